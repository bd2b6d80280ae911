"""The step side of progress in commit statuses: the reporter patches the step's progress
ConfigMap through a TLS Kubernetes API fake with RBAC, at most every interval, never failing
the step (steps/progress_status.py)."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilab_gitops.engines.bootstrap.argocd import health_lua
from ilab_gitops.manifests import progress as manifests_progress
from ilab_gitops.steps import progress_status
from ilab_gitops.steps.progress import (
    METRICS_FILE,
    MetricsTail,
    Progress,
    evaluation_progress,
)
from ilab_gitops.steps.progress_status import ConfigMapReporter, clean, reporter_from_env
from tests.support.kube_api_fake import Grant, KubeApiFake, make_tls, start

NS = "ilab"
STEP = "granite-demo-train-phase-1-3f9c2a1b"
NAME = f"{STEP}-progress"
TOKEN = "token-of-the-progress-account"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApiFake]:
    fake = start(tmp_path / "tls")
    fake.grants[TOKEN] = Grant(NS, frozenset({NAME}))
    fake.configmaps[(NS, NAME)] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    try:
        yield fake
    finally:
        fake.stop()


def _env(api: KubeApiFake, tmp_path: Path) -> dict[str, str]:
    host, port = api.url()
    folder = api.token_dir(tmp_path / "token", TOKEN, NS)
    return {
        "ILAB_PROGRESS_TOKEN_DIR": str(folder),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
    }


def _training(percent: float, epoch: int = 3) -> Progress:
    return Progress(
        step="train-phase-1", kind="training", elapsedSeconds=60, percent=percent, epoch=epoch,
        epochs=7,
    )  # fmt: skip


def _description(api: KubeApiFake, name: str = NAME) -> str | None:
    data: dict[str, str] = api.configmaps[(NS, name)].get("data", {})
    return data.get("description")


def test_the_pod_and_the_compiler_agree_on_the_names() -> None:
    assert progress_status.configmap_name(STEP) == manifests_progress.configmap_name(STEP)
    assert progress_status.ENV_TOKEN_DIR == manifests_progress.ENV_TOKEN_DIR
    # The reporter cuts to what the Lua check still shows (it drops longer text).
    lua_max = re.search(r"^local MAX = (\d+)$", health_lua("progress_configmap"), re.M)
    assert lua_max is not None
    assert int(lua_max[1]) >= progress_status.MAX_DESCRIPTION


def test_no_reporter_without_the_option() -> None:
    assert reporter_from_env(STEP, {}) is None
    assert reporter_from_env(STEP, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None


def test_a_report_is_one_merge_patch_with_the_pods_token(api: KubeApiFake, tmp_path: Path) -> None:
    reporter = reporter_from_env(STEP, _env(api, tmp_path))
    assert reporter is not None
    assert reporter.report(_training(41.2)) is True
    assert _description(api) == "epoch 3/7, 41 %"
    assert api.requests == [
        (
            "PATCH",
            f"/api/v1/namespaces/{NS}/configmaps/{NAME}?fieldManager=ilab-gitops-progress",
            "application/merge-patch+json",
        )
    ]
    # The owner of the field is named in managedFields, not "Python-urllib".
    managers = api.configmaps[(NS, NAME)]["metadata"]["managedFields"]
    assert managers == [{"manager": "ilab-gitops-progress"}]


def test_reports_are_spaced_and_repeats_dropped(api: KubeApiFake, tmp_path: Path) -> None:
    clock = Clock()
    reporter = reporter_from_env(STEP, _env(api, tmp_path), min_interval=600, clock=clock)
    assert reporter is not None
    assert reporter.report(_training(10)) is True
    clock.now += 599
    assert reporter.report(_training(11)) is False  # too soon
    assert _description(api) == "epoch 3/7, 10 %"
    clock.now += 1
    assert reporter.report(_training(10)) is False  # the text already shown
    assert reporter.report(_training(12)) is True
    assert reporter.report(_training(13), final=True) is True  # the last one waits for nothing
    assert _description(api) == "epoch 3/7, 13 %"
    assert reporter.patches == 3 and len(api.requests) == 3


def test_the_token_is_read_again_for_each_patch(api: KubeApiFake, tmp_path: Path) -> None:
    env = _env(api, tmp_path)
    reporter = reporter_from_env(STEP, env, min_interval=0)
    assert reporter is not None
    assert reporter.report(_training(1)) is True
    # The kubelet rotates the projected token; the old one stops working.
    del api.grants[TOKEN]
    api.grants["rotated"] = Grant(NS, frozenset({NAME}))
    Path(env["ILAB_PROGRESS_TOKEN_DIR"], "token").write_text("rotated\n")
    assert reporter.report(_training(2)) is True
    assert _description(api) == "epoch 3/7, 2 %"


def test_refusals_and_outages_never_fail_the_step(
    api: KubeApiFake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = "granite-demo-eval-final-0a1b2c3d"
    api.configmaps[(NS, f"{other}-progress")] = {"metadata": {}}
    reporter = reporter_from_env(other, _env(api, tmp_path), min_interval=0)
    assert reporter is not None
    with caplog.at_level(logging.WARNING, logger=progress_status.__name__):
        assert reporter.report(_training(1)) is False  # RBAC: not the Role's ConfigMap
        assert reporter.report(_training(2)) is False
    assert "data" not in api.configmaps[(NS, f"{other}-progress")]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["progress not posted to the commit status: HTTP 403 Forbidden"]
    api.fail_with = 500
    fine = reporter_from_env(STEP, _env(api, tmp_path), min_interval=0)
    assert fine is not None and fine.report(_training(3)) is False


def _listener(tmp_path: Path, reply: bytes | None) -> tuple[socket.socket, dict[str, str]]:
    """A TLS-less socket on 127.0.0.1 that accepts and then sends `reply` (None: nothing),
    with a token folder pointing at it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            if reply is not None:
                conn.recv(65536)
                conn.sendall(reply)
            else:
                conn.recv(65536)
                time.sleep(3)

    threading.Thread(target=serve, daemon=True).start()
    return server, _token_env(tmp_path, port)


def _token_env(tmp_path: Path, port: int) -> dict[str, str]:
    """A pod's token folder (a CA of its own) and an API address on 127.0.0.1:`port`."""
    folder = tmp_path / "token"
    folder.mkdir(exist_ok=True)
    ca, _, _ = make_tls(tmp_path / "ca")
    (folder / "ca.crt").write_bytes(ca.read_bytes())
    (folder / "token").write_text("t")
    (folder / "namespace").write_text(NS)
    return {
        "ILAB_PROGRESS_TOKEN_DIR": str(folder),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(port),
    }


def test_an_unreachable_api_is_a_logged_no(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        reporter = reporter_from_env(STEP, _token_env(tmp_path, unused.getsockname()[1]))
        with caplog.at_level(logging.WARNING, logger=progress_status.__name__):
            assert reporter is not None and reporter.report(_training(5)) is False
    assert "refused" in caplog.text.lower()


def test_an_api_that_never_answers_costs_the_timeout_only(tmp_path: Path) -> None:
    server, env = _listener(tmp_path, None)
    with server:
        reporter = reporter_from_env(STEP, env)
        assert reporter is not None
        reporter.timeout = 0.5
        started = time.monotonic()
        assert reporter.report(_training(5)) is False
        assert time.monotonic() - started < 2.5


def test_a_reply_that_is_not_http_never_fails_the_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Not TLS, not HTTP: the handshake fails with an SSL error (an OSError) ...
    server, env = _listener(tmp_path, b"garbage\r\n\r\n")
    with server, caplog.at_level(logging.WARNING, logger=progress_status.__name__):
        reporter = reporter_from_env(STEP, env)
        assert reporter is not None and reporter.report(_training(5)) is False
    assert "progress not posted" in caplog.text


def test_any_error_of_the_http_client_is_swallowed(
    api: KubeApiFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """... and what http.client raises on a broken reply (not an OSError) is caught too."""
    reporter = reporter_from_env(STEP, _env(api, tmp_path), min_interval=0)
    assert reporter is not None

    def broken(*args: object, **kwargs: object) -> None:
        raise http.client.IncompleteRead(b"{")

    monkeypatch.setattr(reporter, "_patch", broken)
    assert reporter.report(_training(5)) is False
    monkeypatch.undo()
    assert reporter.report(_training(6)) is True  # and the next one goes through


def test_the_servers_certificate_must_come_from_the_clusters_ca(
    api: KubeApiFake, tmp_path: Path
) -> None:
    env = _env(api, tmp_path)
    stranger, _, _ = make_tls(tmp_path / "stranger")  # another CA
    Path(env["ILAB_PROGRESS_TOKEN_DIR"], "ca.crt").write_bytes(stranger.read_bytes())
    reporter = reporter_from_env(STEP, env)
    assert reporter is not None and reporter.report(_training(5)) is False
    assert api.requests == []  # the TLS handshake failed before any request


def test_the_servers_certificate_must_name_the_host(api: KubeApiFake, tmp_path: Path) -> None:
    # The fake's certificate is for 127.0.0.1; the right CA does not make "localhost" right.
    env = {**_env(api, tmp_path), "KUBERNETES_SERVICE_HOST": "localhost"}
    reporter = reporter_from_env(STEP, env)
    assert reporter is not None and reporter.report(_training(5)) is False
    assert api.requests == []


def test_a_proxy_in_the_environment_is_not_used(
    api: KubeApiFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    reporter = reporter_from_env(STEP, _env(api, tmp_path))
    assert reporter is not None and reporter.report(_training(5)) is True


def test_a_pod_missing_its_token_volume_reports_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"ILAB_PROGRESS_TOKEN_DIR": str(tmp_path / "none")}
    with caplog.at_level(logging.WARNING, logger=progress_status.__name__):
        assert reporter_from_env(STEP, {**env, "KUBERNETES_SERVICE_HOST": "127.0.0.1"}) is None
    assert "progress not posted" in caplog.text


def test_descriptions_are_one_short_line() -> None:
    assert clean("epoch 1/2,\n5 %\x1b[31m\x85") == "epoch 1/2, 5 % [31m"
    assert len(clean("x" * 500)) == progress_status.MAX_DESCRIPTION


def test_training_tail_reports_while_it_trains_and_at_the_end(
    api: KubeApiFake, tmp_path: Path
) -> None:
    clock = Clock()
    reporter = reporter_from_env(STEP, _env(api, tmp_path), min_interval=600, clock=clock)
    checkpoints, output = tmp_path / "ckpt", tmp_path / "steps" / "run-train-phase-1-abc"
    checkpoints.mkdir()
    output.parent.mkdir()
    metrics = checkpoints / METRICS_FILE

    def write(epoch: int, seen: int) -> None:
        entry = {"epoch": epoch, "step": seen, "samples_seen": seen, "total_samples": 100}
        with metrics.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    tail = MetricsTail(
        metrics, output, "train-phase-1", 2, interval=3600, clock=clock, emit=lambda _: None,
        reporter=reporter,
    )  # fmt: skip
    with tail:
        write(0, 50)
        tail.poll()
        assert _description(api) == "epoch 1/2, 25 %"
        clock.now += 60
        write(1, 120)
        tail.poll()  # within the interval: file and log only
        assert _description(api) == "epoch 1/2, 25 %"
        write(1, 180)
    assert _description(api) == "epoch 2/2, 90 %"  # the final poll on exit


def test_evaluation_reports_each_checkpoint_and_the_last_at_once(
    api: KubeApiFake, tmp_path: Path
) -> None:
    clock = Clock()
    step = "granite-demo-eval-mt-bench-4d5e6f70"
    name = f"{step}-progress"
    api.grants[TOKEN] = Grant(NS, frozenset({name}))
    api.configmaps[(NS, name)] = {"metadata": {}}
    reporter = reporter_from_env(step, _env(api, tmp_path), min_interval=600, clock=clock)
    output = tmp_path / "steps" / "run-eval-mt-bench-abc"
    output.parent.mkdir()
    for done in (0, 1):
        clock.now += 900
        evaluation_progress(
            output, "eval-mt-bench", done=done, total=2, elapsed=10, best=None,
            emit=lambda _: None, reporter=reporter,
        )  # fmt: skip
    assert _description(api, name) == "checkpoint 1/2, 50 %"
    # The last checkpoint comes a second later, far inside the spacing: sent all the same.
    clock.now += 1
    evaluation_progress(
        output, "eval-mt-bench", done=2, total=2, elapsed=20, best=("samples_9", 7.1),
        emit=lambda _: None, reporter=reporter,
    )  # fmt: skip
    assert _description(api, name) == "checkpoint 2/2, 100 %"


def test_reporter_is_built_from_a_url_it_can_quote(tmp_path: Path) -> None:
    ca, _, _ = make_tls(tmp_path)
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "ca.crt").write_bytes(ca.read_bytes())
    (folder / "namespace").write_text("ilab\n")
    env = {
        "ILAB_PROGRESS_TOKEN_DIR": str(folder),
        "KUBERNETES_SERVICE_HOST": "fd00::1",
        "KUBERNETES_SERVICE_PORT": "6443",
    }
    reporter = reporter_from_env(STEP, env)
    assert isinstance(reporter, ConfigMapReporter)
    assert reporter.url == (
        f"https://[fd00::1]:6443/api/v1/namespaces/ilab/configmaps/{NAME}"
        "?fieldManager=ilab-gitops-progress"
    )
    assert reporter_from_env(STEP, {**env, "KUBERNETES_SERVICE_PORT": "x"}) is None
