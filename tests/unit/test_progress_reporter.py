"""The step side of progress in commit statuses: the reporter patches the step's progress
ConfigMap through a TLS Kubernetes API fake with RBAC, at most every interval, never failing
the step (steps/progress_status.py)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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
NAME = "granite-demo-train-phase-1-progress"
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


def _env(api: KubeApiFake, tmp_path: Path, name: str = NAME) -> dict[str, str]:
    host, port = api.url()
    folder = api.token_dir(tmp_path / "token", TOKEN, NS)
    return {
        "ILAB_PROGRESS_CONFIGMAP": name,
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
    assert progress_status.ENV_CONFIGMAP == manifests_progress.ENV_CONFIGMAP
    assert progress_status.ENV_TOKEN_DIR == manifests_progress.ENV_TOKEN_DIR
    assert progress_status.MAX_DESCRIPTION <= 120  # the Lua check's limit


def test_no_reporter_without_the_option() -> None:
    assert reporter_from_env({}) is None
    assert reporter_from_env({"ILAB_PROGRESS_CONFIGMAP": NAME}) is None


def test_a_report_is_one_merge_patch_with_the_pods_token(api: KubeApiFake, tmp_path: Path) -> None:
    reporter = reporter_from_env(_env(api, tmp_path))
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
    reporter = reporter_from_env(_env(api, tmp_path), min_interval=600, clock=clock)
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
    reporter = reporter_from_env(env, min_interval=0)
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
    other = "granite-demo-eval-final-progress"
    api.configmaps[(NS, other)] = {"metadata": {}}
    reporter = reporter_from_env(_env(api, tmp_path, name=other), min_interval=0)
    assert reporter is not None
    with caplog.at_level(logging.WARNING, logger=progress_status.__name__):
        assert reporter.report(_training(1)) is False  # RBAC: not one of the Role's names
        assert reporter.report(_training(2)) is False
    assert "data" not in api.configmaps[(NS, other)]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["progress not posted to the commit status: HTTP 403 Forbidden"]
    api.fail_with = 500
    fine = reporter_from_env(_env(api, tmp_path), min_interval=0)
    assert fine is not None and fine.report(_training(3)) is False


def test_an_unreachable_api_is_a_logged_no(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "token"
    folder.mkdir()
    ca, _, _ = make_tls(tmp_path)
    (folder / "ca.crt").write_bytes(ca.read_bytes())
    (folder / "token").write_text("t")
    (folder / "namespace").write_text(NS)
    env = {
        "ILAB_PROGRESS_CONFIGMAP": NAME,
        "ILAB_PROGRESS_TOKEN_DIR": str(folder),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(port),
    }
    reporter = reporter_from_env(env)
    assert reporter is not None and reporter.report(_training(5)) is False


def test_the_servers_certificate_must_come_from_the_clusters_ca(
    api: KubeApiFake, tmp_path: Path
) -> None:
    env = _env(api, tmp_path)
    stranger, _, _ = make_tls(tmp_path)  # another CA
    Path(env["ILAB_PROGRESS_TOKEN_DIR"], "ca.crt").write_bytes(stranger.read_bytes())
    reporter = reporter_from_env(env)
    assert reporter is not None and reporter.report(_training(5)) is False
    assert api.requests == []  # the TLS handshake failed before any request


def test_a_pod_missing_its_token_volume_reports_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"ILAB_PROGRESS_CONFIGMAP": NAME, "ILAB_PROGRESS_TOKEN_DIR": str(tmp_path / "none")}
    with caplog.at_level(logging.WARNING, logger=progress_status.__name__):
        assert reporter_from_env({**env, "KUBERNETES_SERVICE_HOST": "127.0.0.1"}) is None
    assert "progress not posted" in caplog.text


def test_descriptions_are_one_short_line() -> None:
    assert clean("epoch 1/2,\n5 %\x1b[31m\x85") == "epoch 1/2, 5 % [31m"
    assert len(clean("x" * 500)) == progress_status.MAX_DESCRIPTION


def test_training_tail_reports_while_it_trains_and_at_the_end(
    api: KubeApiFake, tmp_path: Path
) -> None:
    clock = Clock()
    reporter = reporter_from_env(_env(api, tmp_path), min_interval=600, clock=clock)
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
    name = "granite-demo-eval-mt-bench-progress"
    api.grants[TOKEN] = Grant(NS, frozenset({name}))
    api.configmaps[(NS, name)] = {"metadata": {}}
    reporter = reporter_from_env(_env(api, tmp_path, name=name), min_interval=600, clock=clock)
    output = tmp_path / "steps" / "run-eval-mt-bench-abc"
    output.parent.mkdir()
    for done in (0, 1):
        evaluation_progress(
            output, "eval-mt-bench", done=done, total=2, elapsed=10, best=None,
            emit=lambda _: None, reporter=reporter,
        )  # fmt: skip
        clock.now += 900
    assert _description(api, name) == "checkpoint 1/2, 50 %"
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
        "ILAB_PROGRESS_CONFIGMAP": NAME,
        "ILAB_PROGRESS_TOKEN_DIR": str(folder),
        "KUBERNETES_SERVICE_HOST": "fd00::1",
        "KUBERNETES_SERVICE_PORT": "6443",
    }
    reporter = reporter_from_env(env)
    assert isinstance(reporter, ConfigMapReporter)
    assert reporter.url == (
        f"https://[fd00::1]:6443/api/v1/namespaces/ilab/configmaps/{NAME}"
        "?fieldManager=ilab-gitops-progress"
    )
    assert reporter_from_env({**env, "KUBERNETES_SERVICE_PORT": "x"}) is None
