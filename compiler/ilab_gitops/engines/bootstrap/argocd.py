"""Argo CD bootstrap: Lua health checks (argocd-cm), an AppProject and an ApplicationSet.

Apply once per cluster. The `argocd-cm` object is a fragment: apply it with server-side apply
and its own field manager (`kubectl apply --server-side --field-manager=ilab-gitops`) so that
the keys merge into the existing ConfigMap instead of replacing what the install put there.
"""

from __future__ import annotations

from importlib import resources

from ilab_gitops.engines.bootstrap.policy import progress_rbac_policy
from ilab_gitops.engines.notifications.argocd import (
    SUBSCRIBE_ANNOTATIONS,
    argocd_cmd_params_cm,
    argocd_notifications_cm,
)
from ilab_gitops.manifests.model import PART_OF, K8sObject
from ilab_gitops.manifests.pods import LABEL_RUN

#: Lua script name -> the kind it judges (`<group>/<version>`, `<Kind>`).
HEALTH_CHECKS: dict[str, tuple[str, str]] = {
    "pytorchjob": ("kubeflow.org/v1", "PyTorchJob"),
    "trainjob": ("trainer.kubeflow.org/v1alpha1", "TrainJob"),
    "batch_job": ("batch/v1", "Job"),
    "progress_configmap": ("v1", "ConfigMap"),
}

#: argocd-cm key -> Lua script name (GITOPS.md facts 1 and 2).
HEALTH_CHECK_KEYS: dict[str, str] = {
    "resource.customizations.health.kubeflow.org_PyTorchJob": "pytorchjob",
    "resource.customizations.health.trainer.kubeflow.org_TrainJob": "trainjob",
    "resource.customizations.health.batch_Job": "batch_job",
}
#: Installed only for an Environment with commitStatusProgress (a core kind: no group_).
PROGRESS_CHECK_KEY = "resource.customizations.health.ConfigMap"

#: The cluster Argo CD runs in.
IN_CLUSTER = "https://kubernetes.default.svc"

#: Every kind the compiler emits into a run folder (with PROGRESS_KINDS for an Environment
#: with commitStatusProgress); nothing cluster-scoped.
NAMESPACED_KINDS: tuple[tuple[str, str], ...] = (
    ("", "ConfigMap"),
    ("", "PersistentVolumeClaim"),
    ("batch", "Job"),
    ("kubeflow.org", "PyTorchJob"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("trainer.kubeflow.org", "TrainJob"),
)
#: What a run of an Environment with commitStatusProgress adds (manifests/progress.py).
PROGRESS_KINDS: tuple[tuple[str, str], ...] = (
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
)


_SHARED_MARK = "-- (conditions.lua is inserted here: `truthy` and `message`)\n"


def health_lua(name: str) -> str:
    """Text of the Lua health check `name`: one of pytorchjob, trainjob, batch_job."""
    if name not in HEALTH_CHECKS:
        known = ", ".join(sorted(HEALTH_CHECKS))
        raise ValueError(f"unknown health check {name!r}; known: {known}")
    folder = resources.files("ilab_gitops.engines.bootstrap").joinpath("lua")
    script = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    shared = folder.joinpath("conditions.lua").read_text(encoding="utf-8")
    return script.replace(_SHARED_MARK, shared.rstrip("\n") + "\n", 1)


def argocd_cm(argocd_namespace: str = "argocd", *, progress: bool = False) -> K8sObject:
    """The `argocd-cm` fragment installing the health checks (with `progress`, also the one
    that turns progress ConfigMaps into health messages)."""
    data = {key: health_lua(script) for key, script in HEALTH_CHECK_KEYS.items()}
    if progress:
        data[PROGRESS_CHECK_KEY] = health_lua("progress_configmap")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": argocd_namespace,
            "labels": {
                "app.kubernetes.io/name": "argocd-cm",
                "app.kubernetes.io/part-of": "argocd",
            },
        },
        "data": data,
    }


def app_project(
    repo_url: str, namespace: str, argocd_namespace: str, project: str, *, progress: bool = False
) -> K8sObject:
    """An AppProject allowing only the runs repo, the runs namespace and the kinds we emit
    (ServiceAccount, Role and RoleBinding only for an Environment with commitStatusProgress)."""
    kinds = NAMESPACED_KINDS + (PROGRESS_KINDS if progress else ())
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": project, "namespace": argocd_namespace, "labels": dict(PART_OF)},
        "spec": {
            "description": "InstructLab training runs compiled by ilab-gitops",
            "sourceRepos": [repo_url],
            "destinations": [{"server": IN_CLUSTER, "namespace": namespace}],
            "clusterResourceWhitelist": [],
            "namespaceResourceWhitelist": [
                {"group": group, "kind": kind} for group, kind in sorted(kinds)
            ],
        },
    }


def application_set(
    repo_url: str,
    *,
    revision: str,
    rendered_path: str,
    namespace: str,
    argocd_namespace: str,
    project: str,
    environment: str,
) -> K8sObject:
    """One Application per `<rendered_path>/<environment>/<run>` folder (Go templates).

    The generator reaches only the folder of the environment this cluster serves; another
    environment's runs never become Applications here.
    """
    rendered = f"{rendered_path.strip('/')}/{environment}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": project, "namespace": argocd_namespace, "labels": dict(PART_OF)},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "git": {
                        "repoURL": repo_url,
                        "revision": revision,
                        "directories": [{"path": f"{rendered}/*"}],
                    }
                }
            ],
            # Deleting an Application (its run folder left git) keeps the run's objects.
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            "template": {
                "metadata": {
                    "name": "{{.path.basename}}",
                    "labels": {**PART_OF, LABEL_RUN: "{{.path.basename}}"},
                    # Commit statuses per step (Argo CD Notifications, see notifications/).
                    "annotations": dict(SUBSCRIBE_ANNOTATIONS),
                },
                "spec": {
                    "project": project,
                    "source": {
                        "repoURL": repo_url,
                        "targetRevision": revision,
                        "path": "{{.path.path}}",
                        # The run's step folders; the Flux wiring is not for Argo CD.
                        "directory": {"recurse": True, "exclude": "flux/*"},
                    },
                    "destination": {"server": IN_CLUSTER, "namespace": namespace},
                    "syncPolicy": {
                        # Self-heal off: a finished step must never be re-applied (fact 7).
                        "automated": {"prune": True, "selfHeal": False},
                        "syncOptions": ["ApplyOutOfSyncOnly=true", "CreateNamespace=false"],
                        "retry": {
                            "limit": 3,
                            "backoff": {"duration": "30s", "factor": 2, "maxDuration": "5m"},
                        },
                    },
                },
            },
        },
    }


def argocd_bootstrap(  # noqa: PLR0917 - the public signature is positional
    repo_url: str,
    revision: str = "main",
    rendered_path: str = "rendered",
    namespace: str = "ilab",
    argocd_namespace: str = "argocd",
    project: str = "ilab-runs",
    argocd_url: str | None = None,
    *,
    environment: str,
    progress: bool = False,
) -> list[K8sObject]:
    """Health checks and notification fragments, AppProject, ApplicationSet, in apply order.
    `progress`: the Environment has commitStatusProgress (then also the admission policy
    that keeps the runs' RBAC to the progress shape)."""
    policy = progress_rbac_policy(namespace, "argocd", argocd_namespace) if progress else []
    return [
        argocd_cm(argocd_namespace, progress=progress),
        argocd_cmd_params_cm(argocd_namespace),
        argocd_notifications_cm(argocd_namespace, argocd_url),
        app_project(repo_url, namespace, argocd_namespace, project, progress=progress),
        application_set(
            repo_url,
            revision=revision,
            rendered_path=rendered_path,
            namespace=namespace,
            argocd_namespace=argocd_namespace,
            project=project,
            environment=environment,
        ),
        *policy,
    ]
