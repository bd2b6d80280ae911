"""Progress of running steps in `ilab-gitops status`: read from the pods' log tails."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kubernetes.client import V1ObjectMeta, V1Pod

from ilab_gitops.status.classify import _with_pods
from ilab_gitops.status.model import RunStatus, StepState, StepStatus
from ilab_gitops.status.render import progress_text, render_json, render_table
from ilab_gitops.steps.progress import Progress, log_line

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TRAINING = Progress(
    step="train-phase-1",
    kind="training",
    elapsedSeconds=3600,
    etaSeconds=7380,
    percent=41.0,
    epoch=3,
    epochs=7,
    samplesSeen=2870,
    samplesTotal=7000,
    lastLoss=1.25,
)


def _pod(name: str) -> V1Pod:
    return V1Pod(metadata=V1ObjectMeta(name=name))


def test_running_step_takes_the_masters_last_progress_line() -> None:
    older = TRAINING.model_copy(update={"percent": 30.0})
    worker = TRAINING.model_copy(update={"percent": 99.0})
    logs = {
        "r-train-master-0": f"starting\n{log_line(older)}\nnoise\n{log_line(TRAINING)}\nmore\n",
        "r-train-worker-0": log_line(worker),
    }
    row = StepStatus("train-phase-1", StepState.RUNNING, kind="PyTorchJob", name="r-train")
    found = _with_pods(row, [_pod("r-train-master-0"), _pod("r-train-worker-0")], logs)
    assert found.progress == TRAINING


def test_finished_or_queued_steps_show_no_progress() -> None:
    logs = {"p": log_line(TRAINING)}
    for state in (StepState.SUCCEEDED, StepState.QUEUED, StepState.FAILED):
        row = StepStatus("train-phase-1", state, kind="PyTorchJob")
        assert _with_pods(row, [_pod("p")], logs).progress is None


def test_table_shows_a_bar_and_eta_and_json_carries_the_numbers() -> None:
    assert progress_text(TRAINING) == "[########------------] epoch 3/7, 41 % ETA 2h03m"
    step = StepStatus(
        "train-phase-1",
        StepState.RUNNING,
        kind="PyTorchJob",
        started=datetime(2026, 11, 24, 11, 0, tzinfo=UTC),
        progress=TRAINING,
    )
    status = RunStatus("r", "ilab", NOW, (step,))
    table = render_table(status, width=120)
    assert "[########------------] epoch 3/7, 41 % ETA 2h03m" in table
    data = json.loads(render_json(status))
    assert data["steps"][0]["progress"] == TRAINING.model_dump(exclude_none=True)
    plain = RunStatus("r", "ilab", NOW, (StepStatus("prepare", StepState.WAITING),))
    assert "progress" not in json.loads(render_json(plain))["steps"][0]
