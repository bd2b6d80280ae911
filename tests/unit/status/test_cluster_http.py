"""status/cluster.py with the real kubernetes client against a local HTTP server.

The server answers the API paths the reads call (Jobs, Pods and pod logs, PyTorchJobs and
TrainJobs through CustomObjectsApi, the Argo CD Application, Flux Kustomizations) with the
status fixtures, so the client's own request building and deserializing is exercised; the
status read this way must equal the one built from the same fixtures directly.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug import Request, Response

from ilab_gitops.manifests.pods import LABEL_RUN
from ilab_gitops.status import cluster
from ilab_gitops.status.classify import classify_run
from tests.unit.status.loader import FIXTURES, items, scenario, scenarios

pytest.importorskip("kubernetes")
httpserver_module = pytest.importorskip("pytest_httpserver")
HTTPServer = httpserver_module.HTTPServer

RUN = "granite-demo"
SELECTOR = f"{LABEL_RUN}={RUN}"
JOBS = "/apis/batch/v1/namespaces/ilab/jobs"
PODS = "/api/v1/namespaces/ilab/pods"
PYTORCHJOBS = "/apis/kubeflow.org/v1/namespaces/ilab/pytorchjobs"
TRAINJOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ilab/trainjobs"
APPLICATION = f"/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{RUN}"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations"


def _kubeconfig(tmp_path: Path, server: str, namespace: str | None = "ilab") -> Path:
    context: dict[str, Any] = {"cluster": "local", "user": "tester"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [
            {"name": "main", "context": context},
            {"name": "other", "context": {"cluster": "local", "user": "tester", "namespace": "ml"}},
        ],
        "current-context": "main",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _use_kubeconfig(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """$KUBECONFIG, which the client reads once, at import: its default is set too."""
    from kubernetes.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)


@pytest.fixture
def api(httpserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    _use_kubeconfig(monkeypatch, _kubeconfig(tmp_path, httpserver.url_for("").rstrip("/")))
    return httpserver


def _listing(kind: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": f"{kind}List", "metadata": {}, "items": objects}


def _status(code: int, reason: str) -> Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason}
    return Response(json.dumps(body), status=code, content_type="application/json")


def _serve_scenario(server: Any, name: str, *, selector: str = SELECTOR) -> None:
    """Answer every read of `read_run` with the scenario's objects, by kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for file in scenarios()[name]["objects"]:
        for obj in items(file):
            by_kind.setdefault(obj["kind"], []).append(obj)
    query = {"labelSelector": selector}
    server.expect_request(JOBS, query_string=query).respond_with_json(
        _listing("Job", by_kind.get("Job", []))
    )
    server.expect_request(PODS, query_string=query).respond_with_json(
        _listing("Pod", by_kind.get("Pod", []))
    )
    server.expect_request(PYTORCHJOBS, query_string=query).respond_with_json(
        _listing("PyTorchJob", by_kind.get("PyTorchJob", []))
    )
    server.expect_request(TRAINJOBS, query_string=query).respond_with_response(
        _status(404, "NotFound")  # the CRD is not installed
    )
    applications = by_kind.get("Application", [])
    if applications:
        server.expect_request(APPLICATION).respond_with_json(applications[0])
    else:
        server.expect_request(APPLICATION).respond_with_response(_status(404, "NotFound"))
    server.expect_request(KUSTOMIZATIONS, query_string=query).respond_with_json(
        _listing("Kustomization", by_kind.get("Kustomization", []))
    )
    for log in scenarios()[name].get("logs", []):
        pod = Path(log).stem
        text = (FIXTURES / "logs" / log).read_text(encoding="utf-8")
        server.expect_request(f"{PODS}/{pod}/log").respond_with_data(text)
    # Pods without a log tail in the fixtures: the log is not readable (yet).
    server.expect_request(re.compile(f"^{PODS}/[^/]+/log$")).respond_with_response(
        _status(404, "NotFound")
    )


@pytest.mark.parametrize(
    "name", ["argocd-training", "argocd-job-queued", "flux-prepare-running", "argocd-evaluating"]
)
def test_status_read_over_http_equals_the_fixture_status(api: Any, name: str) -> None:
    _serve_scenario(api, name)
    connection = cluster.connect()
    assert connection.namespace == "ilab"
    objects = cluster.read_run(connection, RUN, "ilab")
    expected, now = scenario(name)
    assert objects.pods == expected.pods  # the client's models, compared field by field
    assert objects.jobs == expected.jobs
    assert objects.custom == expected.custom
    assert objects.application == expected.application
    assert objects.kustomizations == expected.kustomizations
    assert objects.logs == expected.logs
    assert classify_run(objects, now) == classify_run(expected, now)


def test_log_requests_name_the_pytorch_container_and_a_bounded_tail(api: Any) -> None:
    _serve_scenario(api, "argocd-training")
    objects = cluster.read_run(cluster.connect(), RUN, "ilab")
    assert set(objects.logs) == {"granite-demo-train-phase-1-3f9c2a1b-master-0"}
    log_calls = [r for r, _ in api.log if r.path.endswith("/log")]
    assert log_calls, "no pod log was read"
    for request in log_calls:
        assert request.args.get("tailLines") == str(cluster.LOG_TAIL_LINES)
        assert request.args.get("container") == "pytorch"


def test_a_running_mt_bench_job_has_its_log_read_for_progress(api: Any) -> None:
    """MT-Bench runs as a plain Job under Argo CD: its pod's log (container `step`) is read,
    and the step's row carries the evaluation progress logged there."""
    _serve_scenario(api, "argocd-evaluating")
    objects = cluster.read_run(cluster.connect(), RUN, "ilab")
    assert set(objects.logs) == {"granite-demo-eval-mt-bench-7d41c0e2-x7k2p"}
    (request,) = [r for r, _ in api.log if r.path.endswith("/log")]
    assert request.args.get("container") == "step"
    rows = {row.step: row for row in classify_run(objects, scenario("argocd-evaluating")[1]).steps}
    progress = rows["eval-mt-bench"].progress
    assert progress is not None and (progress.checkpointsDone, progress.checkpointsTotal) == (3, 8)


def test_reads_without_logs_ask_for_none(api: Any) -> None:
    _serve_scenario(api, "argocd-training")
    objects = cluster.read_run(cluster.connect(), RUN, "ilab", logs=False)
    assert objects.logs == {}
    assert not [r for r, _ in api.log if r.path.endswith("/log")]


def test_forbidden_or_missing_optional_kinds_are_skipped(api: Any) -> None:
    query = {"labelSelector": SELECTOR}
    job = items("job-prepare-running.yaml")
    api.expect_request(JOBS, query_string=query).respond_with_json(_listing("Job", job))
    api.expect_request(PODS, query_string=query).respond_with_json(_listing("Pod", []))
    for path in (PYTORCHJOBS, TRAINJOBS):
        api.expect_request(path).respond_with_response(_status(404, "NotFound"))
    api.expect_request(APPLICATION).respond_with_response(_status(403, "Forbidden"))
    api.expect_request(KUSTOMIZATIONS).respond_with_response(_status(403, "Forbidden"))
    objects = cluster.read_run(cluster.connect(), RUN, "ilab")
    assert [j.to_dict()["metadata"]["name"] for j in objects.jobs] == [job[0]["metadata"]["name"]]
    assert (objects.custom, objects.application, objects.kustomizations) == ((), None, ())


def test_a_server_error_on_an_optional_kind_is_not_hidden(api: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    api.expect_request(JOBS).respond_with_json(_listing("Job", []))
    api.expect_request(PODS).respond_with_json(_listing("Pod", []))
    api.expect_request(PYTORCHJOBS).respond_with_response(_status(500, "InternalError"))
    with pytest.raises(ApiException) as raised:
        cluster.read_run(cluster.connect(), RUN, "ilab")
    assert raised.value.status == 500


def test_jobs_that_cannot_be_read_are_a_cluster_error(api: Any) -> None:
    api.expect_request(JOBS).respond_with_response(_status(403, "Forbidden"))
    with pytest.raises(cluster.ClusterError) as raised:
        cluster.read_run(cluster.connect(), RUN, "ilab")
    assert str(raised.value) == "cannot read Jobs or Pods in namespace ilab: 403 FORBIDDEN"


def test_list_runs_names_each_run_once_sorted(api: Any) -> None:
    def job(run: str) -> dict[str, Any]:
        return {"metadata": {"name": f"{run}-prepare", "labels": {LABEL_RUN: run}}}

    query = {"labelSelector": LABEL_RUN}
    api.expect_request(JOBS, query_string=query).respond_with_json(
        _listing("Job", [job("zeta"), job("alpha"), job("zeta")])
    )
    pytorchjob = {"metadata": {"name": "mid-train", "labels": {LABEL_RUN: "mid"}}}
    api.expect_request(PYTORCHJOBS, query_string=query).respond_with_json(
        _listing("PyTorchJob", [pytorchjob])
    )
    api.expect_request(TRAINJOBS).respond_with_response(_status(404, "NotFound"))
    assert cluster.list_runs(cluster.connect(), "ilab") == ["alpha", "mid", "zeta"]


def test_list_runs_when_jobs_cannot_be_listed(api: Any) -> None:
    api.expect_request(JOBS).respond_with_response(_status(403, "Forbidden"))
    with pytest.raises(cluster.ClusterError) as raised:
        cluster.list_runs(cluster.connect(), "ilab")
    assert str(raised.value) == "cannot list Jobs in namespace ilab: 403 FORBIDDEN"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_cluster_is_a_cluster_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = f"http://127.0.0.1:{_closed_port()}"
    _use_kubeconfig(monkeypatch, _kubeconfig(tmp_path, server))
    connection = cluster.connect()
    connection.api.configuration.retries = 0
    for read in (
        lambda: cluster.read_run(connection, RUN, "ilab"),
        lambda: cluster.list_runs(connection, "ilab"),
    ):
        with pytest.raises(cluster.ClusterError) as raised:
            read()
        assert str(raised.value).startswith("cannot reach the cluster: ")


def test_connect_uses_the_chosen_context_and_its_namespace(api: Any) -> None:
    assert cluster.connect("other").namespace == "ml"


def test_connect_defaults_to_the_default_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(tmp_path, "http://127.0.0.1:1", namespace=None)
    _use_kubeconfig(monkeypatch, config)
    assert cluster.connect().namespace == "default"


def test_no_configuration_at_all_is_a_cluster_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_kubeconfig(monkeypatch, tmp_path / "missing")
    with pytest.raises(cluster.ClusterError) as raised:
        cluster.connect()
    assert str(raised.value).startswith("no cluster configuration: ")


def test_a_request_log_records_only_reads(api: Any) -> None:
    _serve_scenario(api, "flux-prepare-running")
    cluster.read_run(cluster.connect(), RUN, "ilab")
    methods = {request.method for request, _ in api.log}
    assert methods == {"GET"}
    assert all(isinstance(request, Request) for request, _ in api.log)
