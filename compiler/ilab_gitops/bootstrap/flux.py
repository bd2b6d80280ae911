"""Flux bootstrap: the runs repo as a GitRepository and a parent Kustomization.

The parent applies `./<rendered_path>`, whose `kustomization.yaml` (written by the compiler)
lists each run's `flux/` folder; those hold one Kustomization per step, chained with
`dependsOn` and waiting on their own health checks. The parent therefore does not wait.
The step Kustomizations reference the source by name (`Environment.spec.flux.sourceName`)
in their own namespace (`Environment.spec.flux.namespace`): pass the same values here.
"""

from __future__ import annotations

from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.notifications.flux import flux_notifications

_LABELS = {"app.kubernetes.io/part-of": "ilab-gitops"}


def git_repository(
    repo_url: str, branch: str, rendered_path: str, namespace: str, name: str
) -> K8sObject:
    """The runs repo; only `<rendered_path>/` goes into the artifact."""
    rendered = rendered_path.strip("/")
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(_LABELS)},
        "spec": {
            "interval": "1m",
            "timeout": "60s",
            "url": repo_url,
            "ref": {"branch": branch},
            "ignore": f"/*\n!/{rendered}/\n",
        },
    }


def parent_kustomization(rendered_path: str, namespace: str, name: str) -> K8sObject:
    """Applies the step Kustomizations of every run; prunes those of runs removed from git."""
    rendered = rendered_path.strip("/")
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(_LABELS)},
        "spec": {
            "interval": "10m",
            "retryInterval": "1m",
            "timeout": "2m",
            "path": f"./{rendered}",
            "prune": True,
            # The step Kustomizations wait on their workloads; waiting here would only
            # block every run behind the slowest one.
            "wait": False,
            "sourceRef": {"kind": "GitRepository", "name": name},
        },
    }


def flux_bootstrap(
    repo_url: str,
    branch: str = "main",
    rendered_path: str = "rendered",
    namespace: str = "flux-system",
    source_name: str = "ilab-runs",
) -> list[K8sObject]:
    """GitRepository, parent Kustomization (both named `source_name`), and the commit-status
    Provider and Alert, in apply order."""
    return [
        git_repository(repo_url, branch, rendered_path, namespace, source_name),
        parent_kustomization(rendered_path, namespace, source_name),
        *flux_notifications(repo_url, namespace),
    ]
