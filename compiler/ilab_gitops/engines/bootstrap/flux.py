"""Flux bootstrap: the runs repo as a GitRepository and a parent Kustomization.

A cluster serves one environment: the parent applies `./<rendered_path>/<environment>`, whose
`kustomization.yaml` (written by the compiler) lists the `flux/` folder of each run of that
environment, and the GitRepository's artifact holds only that folder, so another
environment's run is out of the cluster's reach. The `flux/` folders hold one Kustomization
per step, chained with `dependsOn` and waiting on their own health checks. The parent
therefore does not wait. The step Kustomizations reference the source by name
(`Environment.spec.flux.sourceName`) in their own namespace
(`Environment.spec.flux.namespace`): pass the same values here.
"""

from __future__ import annotations

from ilab_gitops.engines.bootstrap.policy import progress_rbac_policy
from ilab_gitops.engines.notifications.flux import flux_notifications
from ilab_gitops.manifests.model import PART_OF, K8sObject


def served_path(rendered_path: str, environment: str) -> str:
    """`rendered/<environment>`: the only folder of the runs repo a cluster applies."""
    return f"{rendered_path.strip('/')}/{environment}"


def git_repository(  # noqa: PLR0917 - positional like the others here
    repo_url: str, branch: str, rendered_path: str, namespace: str, name: str, environment: str
) -> K8sObject:
    """The runs repo; only `<rendered_path>/<environment>/` goes into the artifact."""
    rendered = served_path(rendered_path, environment)
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "spec": {
            "interval": "1m",
            "timeout": "60s",
            "url": repo_url,
            "ref": {"branch": branch},
            "ignore": f"/*\n!/{rendered}/\n",
        },
    }


def parent_kustomization(
    rendered_path: str, namespace: str, name: str, environment: str
) -> K8sObject:
    """Applies the step Kustomizations of the environment's runs; prunes those of runs removed
    from git."""
    rendered = served_path(rendered_path, environment)
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
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
    *,
    environment: str,
    progress_namespace: str | None = None,
) -> list[K8sObject]:
    """GitRepository, parent Kustomization (both named `source_name`), and the commit-status
    Provider and Alert, in apply order; with `progress_namespace` (the runs namespace of an
    Environment with commitStatusProgress) also the admission policy on the runs' RBAC."""
    policy = (
        progress_rbac_policy(progress_namespace, "flux", namespace) if progress_namespace else []
    )
    return [
        git_repository(repo_url, branch, rendered_path, namespace, source_name, environment),
        parent_kustomization(rendered_path, namespace, source_name, environment),
        *flux_notifications(repo_url, namespace),
        *policy,
    ]
