"""Progress in commit statuses (Environment `commitStatusProgress`, Argo CD only).

A step pod has no Kubernetes API token by default. With the option on, the steps that report
progress (both training phases and MT-Bench) write "epoch 3/7, 41 %" into a ConfigMap of their
own, `<step name>-progress`, whose Lua health check (bootstrap argocd) turns it into the health
message Argo CD Notifications puts into the step's commit status.

What the pods get, and nothing more: per reporting step, a ServiceAccount
`<run>-<step>-progress` and a Role that may only `patch` that step's ConfigMap by name, bound
to that account, so one step's token reaches no other step's ConfigMap. The ConfigMap, Role
and RoleBinding carry the step's content-addressed name, so they live and go with that attempt
of the step: a re-run starts from an empty ConfigMap, never from the last attempt's progress.
The token is an explicit projected volume at `TOKEN_DIR` (not the default path, so no library
picks it up by chance; `automountServiceAccountToken` stays false). The ConfigMaps are applied
without `data`, so what the pods write is not drift for Argo CD and a sync never resets it.
"""

from __future__ import annotations

from dataclasses import replace

from ilab_gitops.manifests import pods
from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.manifests.workloads import StepPlan
from ilab_gitops.spec.environment import Environment

#: Steps that write progress (steps/progress.py).
PROGRESS_STEPS: tuple[str, ...] = ("train-phase-1", "train-phase-2", "eval-mt-bench")
#: On the progress ConfigMaps; the Lua health check gives only these a message.
LABEL_PROGRESS = "gitops.instructlab.ai/progress"
ENV_TOKEN_DIR = "ILAB_PROGRESS_TOKEN_DIR"
TOKEN_DIR = "/var/run/secrets/ilab-progress"
TOKEN_VOLUME = "progress-token"
#: A short-lived token; the kubelet renews it before it expires.
TOKEN_SECONDS = 3600


def enabled(env: Environment) -> bool:
    return env.spec.commitStatusProgress


def configmap_name(step_name: str) -> str:
    """The progress ConfigMap of one attempt of a step (steps/progress_status.py agrees)."""
    return f"{step_name}-progress"


def account_name(run: str, step_id: str) -> str:
    return f"{run}-{step_id}-progress"


def reports(env: Environment, step_id: str) -> bool:
    """Whether this step's pod gets the progress token."""
    return enabled(env) and step_id in PROGRESS_STEPS


def _token_volume() -> K8sObject:
    return {
        "volume": {
            "name": TOKEN_VOLUME,
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
        "mount": {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
    }


def with_access(plan: StepPlan, env: Environment, run: str) -> StepPlan:
    """`plan` with the token volume and the run's account, for a reporting step (the pod
    finds its ConfigMap from its step name)."""
    if not reports(env, plan.step_id):
        return plan
    access = pods.PodAccess(
        account=account_name(run, plan.step_id),
        env={"name": ENV_TOKEN_DIR, "value": TOKEN_DIR},
        volume=_token_volume(),
    )
    return replace(plan, access=access)


def step_objects(
    run: str, env: Environment, step_id: str, step_name: str, wave: int
) -> list[K8sObject]:
    """ServiceAccount, ConfigMap, Role and RoleBinding of one attempt of a reporting step,
    applied with it (the account's name does not depend on the attempt)."""
    if not reports(env, step_id):
        return []
    namespace, name = env.spec.namespace, configmap_name(step_name)

    def meta(object_name: str = name) -> K8sObject:
        annotations = {pods.ANNOTATION_WAVE: str(wave)}
        return pods.object_meta(object_name, namespace, run, step_id, annotations)

    configmap_meta = meta()
    configmap_meta["labels"][LABEL_PROGRESS] = "true"
    account = account_name(run, step_id)
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(account),
            "automountServiceAccountToken": False,
        },
        # No `data`: the step writes it; a sync must not take it back (see module docstring).
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": configmap_meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [name],
                    "verbs": ["patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    ]
