"""Progress in commit statuses (Environment `commitStatusProgress`, Argo CD only).

A step pod has no Kubernetes API token by default. With the option on, the steps that report
progress (both training phases and MT-Bench) write "epoch 3/7, 41 %" into a ConfigMap of
their own, `<run>-<step>-progress`, whose Lua health check (bootstrap argocd) turns it into
the health message Argo CD Notifications puts into the step's commit status.

What the pods get, and nothing more: a ServiceAccount per run bound to a Role that may only
`get` and `patch` the run's progress ConfigMaps by name, and its token as an explicit
projected volume at `TOKEN_DIR` (not the default path, so no library picks it up by chance;
`automountServiceAccountToken` stays false). The ConfigMaps are applied without `data`, so
what the pods write is not drift for Argo CD and a sync never resets it.
"""

from __future__ import annotations

from dataclasses import replace

from ilab_gitops.manifests import pods
from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.manifests.workloads import StepPlan
from ilab_gitops.spec.environment import Environment

#: Steps that write progress (steps/progress.py).
PROGRESS_STEPS: tuple[str, ...] = ("train-phase-1", "train-phase-2", "eval-mt-bench")
#: On the progress ConfigMaps; the Lua health check judges only ConfigMaps with it.
LABEL_PROGRESS = "gitops.instructlab.ai/progress"
#: The ConfigMap key the steps write and the health check reads.
DESCRIPTION_KEY = "description"
ENV_CONFIGMAP = "ILAB_PROGRESS_CONFIGMAP"
ENV_TOKEN_DIR = "ILAB_PROGRESS_TOKEN_DIR"
TOKEN_DIR = "/var/run/secrets/ilab-progress"
#: A short-lived token; the kubelet renews it before it expires.
TOKEN_SECONDS = 3600


def enabled(env: Environment) -> bool:
    return env.spec.commitStatusProgress


def configmap_name(run: str, step_id: str) -> str:
    return f"{run}-{step_id}-progress"


def account_name(run: str) -> str:
    return f"{run}-progress"


def reports(env: Environment, step_id: str) -> bool:
    """Whether this step's pod gets the progress token."""
    return enabled(env) and step_id in PROGRESS_STEPS


def _token_volume() -> K8sObject:
    return {
        "volume": {
            "name": "progress-token",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ]
            },
        },
        "mount": {"name": "progress-token", "mountPath": TOKEN_DIR, "readOnly": True},
    }


def with_access(plan: StepPlan, env: Environment, run: str) -> StepPlan:
    """`plan` with the progress ConfigMap's name and the token volume, for a reporting step."""
    if not reports(env, plan.step_id):
        return plan
    extra = [
        {"name": ENV_CONFIGMAP, "value": configmap_name(run, plan.step_id)},
        {"name": ENV_TOKEN_DIR, "value": TOKEN_DIR},
    ]
    return replace(
        plan,
        env=[*plan.env, *extra],
        extra_volumes=[*plan.extra_volumes, _token_volume()],
        service_account=account_name(run),
    )


def run_objects(run: str, env: Environment, step_ids: list[str], wave: int) -> list[K8sObject]:
    """ServiceAccount, Role, RoleBinding and one ConfigMap per reporting step of the run,
    applied with its first step."""
    steps = [s for s in step_ids if s in PROGRESS_STEPS]
    if not enabled(env) or not steps:
        return []
    namespace, first = env.spec.namespace, step_ids[0]
    annotations = {pods.ANNOTATION_WAVE: str(wave)}

    def meta(name: str) -> K8sObject:
        return pods.object_meta(name, namespace, run, first, annotations)

    account = account_name(run)
    objects: list[K8sObject] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(account),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(account),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [configmap_name(run, s) for s in steps],
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(account),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    ]
    for step in steps:
        configmap_meta = pods.object_meta(
            configmap_name(run, step), namespace, run, step, annotations
        )
        configmap_meta["labels"][LABEL_PROGRESS] = "true"
        # No `data`: the step writes it; a sync must not take it back (see module docstring).
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": configmap_meta})
    return objects
