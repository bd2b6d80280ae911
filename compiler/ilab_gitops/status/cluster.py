"""Read a run's objects with the kubernetes client: kubeconfig, else in-cluster config.

The client is imported inside these functions (it takes about a second to import), so
importing this module stays cheap. Reads only; optional kinds whose CRD is not installed, or
that the user may not read (the Argo CD Application, Flux Kustomizations, pod logs), are
skipped instead of failing the command.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilab_gitops.manifests.pods import LABEL_RUN, LABEL_STEP
from ilab_gitops.status.classify import RunObjects

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Pod

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LOG_TAIL_LINES = 200

#: (group, version, plural) of the workload custom resources a run may contain.
WORKLOAD_CRDS: tuple[tuple[str, str, str], ...] = (
    ("kubeflow.org", "v1", "pytorchjobs"),
    ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
)
_TRAINING_POD_LABELS = ("training.kubeflow.org/job-name", "jobset.sigs.k8s.io/jobset-name")
#: Steps that log progress lines and may run as a plain Job (MT-Bench over checkpoints).
_PROGRESS_JOB_STEPS = ("eval-mt-bench",)


class ClusterError(Exception):
    """The cluster could not be reached or read; the message says why, in one line."""


@dataclass(frozen=True)
class Connection:
    api: ApiClient
    namespace: str  # the context's namespace, used when --namespace is not given


def connect(context: str | None = None) -> Connection:
    """Kubeconfig (`$KUBECONFIG` or ~/.kube/config, optionally another context), else the
    in-cluster service account."""
    try:
        from kubernetes import client
        from kubernetes import config as kube_config
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ClusterError(
            "the kubernetes client is not installed: pip install 'ilab-gitops[cluster]'"
        ) from err
    config: Any = kube_config  # the config helpers carry no type hints
    try:
        config.load_kube_config(context=context)
        _, active = config.list_kube_config_contexts()
        if context:
            contexts, _ = config.list_kube_config_contexts()
            active = next((c for c in contexts if c.get("name") == context), active)
        namespace = str((active or {}).get("context", {}).get("namespace") or "default")
    except config.ConfigException as kube_error:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise ClusterError(f"no cluster configuration: {kube_error}") from kube_error
        namespace = (
            IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip()
            if IN_CLUSTER_NAMESPACE.is_file()
            else "default"
        )
    return Connection(client.ApiClient(), namespace)


def _status(err: Exception) -> int | None:
    status = getattr(err, "status", None)
    return status if isinstance(status, int) else None


def _optional(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a read; None when the kind is not installed (404) or not readable (403)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call(*args, **kwargs)
    except ApiException as err:
        if _status(err) in (403, 404):
            return None
        raise


def _log_pods(pods: Iterable[V1Pod]) -> list[V1Pod]:
    """Started pods whose log tail says something: training pods (checkpoints, progress)
    and the pods of steps that run as plain Jobs and log their progress."""
    out = []
    for pod in pods:
        labels = (pod.metadata.labels if pod.metadata else None) or {}
        started = pod.status is not None and pod.status.phase in ("Running", "Succeeded", "Failed")
        training = any(label in labels for label in _TRAINING_POD_LABELS)
        if started and (training or labels.get(LABEL_STEP) in _PROGRESS_JOB_STEPS):
            out.append(pod)
    return out


def _logs(core: Any, pods: Iterable[V1Pod], namespace: str) -> dict[str, str]:
    logs: dict[str, str] = {}
    for pod in _log_pods(pods):
        name = pod.metadata.name if pod.metadata else None
        if not name:
            continue
        containers = [c.name for c in (pod.spec.containers if pod.spec else [])]
        container = next((c for c in ("pytorch", "step") if c in containers), None)
        text = _optional(
            core.read_namespaced_pod_log,
            name,
            namespace,
            container=container,
            tail_lines=LOG_TAIL_LINES,
        )
        if isinstance(text, str):
            logs[name] = text
    return logs


def read_run(
    connection: Connection,
    run: str,
    namespace: str,
    argocd_namespace: str = "argocd",
    flux_namespace: str = "flux-system",
    *,
    logs: bool = True,
) -> RunObjects:
    """Jobs, Pods, PyTorchJobs/TrainJobs of `run`, its Argo CD Application and its Flux
    Kustomizations, where present. Transport and API errors become `ClusterError`."""
    from urllib3.exceptions import HTTPError

    try:
        return _read_run(connection, run, namespace, argocd_namespace, flux_namespace, logs)
    except HTTPError as err:
        raise ClusterError(f"cannot reach the cluster: {err}") from err


def _read_run(  # noqa: PLR0917
    connection: Connection,
    run: str,
    namespace: str,
    argocd_namespace: str,
    flux_namespace: str,
    logs: bool,
) -> RunObjects:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    selector = f"{LABEL_RUN}={run}"
    batch = client.BatchV1Api(connection.api)
    core = client.CoreV1Api(connection.api)
    custom = client.CustomObjectsApi(connection.api)
    try:
        jobs = batch.list_namespaced_job(namespace, label_selector=selector).items
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    except ApiException as err:
        raise ClusterError(
            f"cannot read Jobs or Pods in namespace {namespace}: {err.status} {err.reason}"
        ) from err
    workloads = _custom_workloads(custom, namespace, selector)
    application = _optional(
        custom.get_namespaced_custom_object,
        "argoproj.io",
        "v1alpha1",
        argocd_namespace,
        "applications",
        run,
    )
    kustomizations = _optional(
        custom.list_namespaced_custom_object,
        "kustomize.toolkit.fluxcd.io",
        "v1",
        flux_namespace,
        "kustomizations",
        label_selector=selector,
    )
    return RunObjects(
        run=run,
        namespace=namespace,
        jobs=tuple(jobs or ()),
        pods=tuple(pods or ()),
        custom=tuple(workloads),
        application=application if isinstance(application, dict) else None,
        kustomizations=tuple((kustomizations or {}).get("items") or ()),
        logs=_logs(core, pods or (), namespace) if logs else {},
    )


def list_runs(connection: Connection, namespace: str) -> list[str]:
    """Names of the runs with a Job or a training workload in `namespace`, sorted."""
    from urllib3.exceptions import HTTPError

    try:
        return _list_runs(connection, namespace)
    except HTTPError as err:
        raise ClusterError(f"cannot reach the cluster: {err}") from err


def _list_runs(connection: Connection, namespace: str) -> list[str]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    names: set[str] = set()
    try:
        jobs = client.BatchV1Api(connection.api).list_namespaced_job(
            namespace, label_selector=LABEL_RUN
        )
    except ApiException as err:
        raise ClusterError(
            f"cannot list Jobs in namespace {namespace}: {err.status} {err.reason}"
        ) from err
    for job in jobs.items or []:
        labels = (job.metadata.labels if job.metadata else None) or {}
        names.add(labels[LABEL_RUN])
    custom = client.CustomObjectsApi(connection.api)
    for item in _custom_workloads(custom, namespace, LABEL_RUN):
        names.add(item["metadata"]["labels"][LABEL_RUN])
    return sorted(names)


def _custom_workloads(custom: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    """PyTorchJobs and TrainJobs matching `selector`; a kind not installed yields none."""
    items: list[dict[str, Any]] = []
    for group, version, plural in WORKLOAD_CRDS:
        found = _optional(
            custom.list_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            label_selector=selector,
        )
        items.extend((found or {}).get("items") or [])
    return items
