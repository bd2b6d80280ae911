"""The pure mapping from cluster objects to step states, on fixtures of real object shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ilab_gitops.status.classify import RunObjects, classify_custom, classify_job, classify_run
from ilab_gitops.status.model import StepState
from tests.unit.status.loader import read, run_objects, to_model

NOW = datetime(2026, 8, 3, 12, 0, tzinfo=UTC)
EMPTY = RunObjects("granite-demo", "ilab")


@pytest.mark.parametrize(
    ("fixture", "state", "message"),
    [
        ("job-prepare-succeeded.yaml", StepState.SUCCEEDED, "completed"),
        ("job-prepare-running.yaml", StepState.RUNNING, "1 active pod(s)"),
        (
            "job-eval-mt-bench-suspended.yaml",
            StepState.QUEUED,
            "suspended, waiting for admission in Kueue queue gpu-queue",
        ),
        # Suspended=False (JobResumed) is a running Job, not a suspended or finished one.
        ("job-eval-mt-bench-resumed.yaml", StepState.RUNNING, "1 active pod(s)"),
        ("job-eval-mt-bench-succeeded.yaml", StepState.SUCCEEDED, "completed"),
        (
            "job-eval-final-failed.yaml",
            StepState.FAILED,
            "BackoffLimitExceeded: Job has reached the specified backoff limit",
        ),
    ],
)
def test_job_states(fixture: str, state: StepState, message: str) -> None:
    row = classify_job(to_model(read(fixture)), EMPTY)
    assert (row.state, row.message, row.kind) == (state, message, "Job")
    assert row.step == read(fixture)["metadata"]["labels"]["gitops.instructlab.ai/step"]


def test_queued_job_has_no_start_and_no_duration() -> None:
    row = classify_job(to_model(read("job-eval-mt-bench-suspended.yaml")), EMPTY)
    assert row.started is None
    assert row.duration(NOW) is None


def test_failed_job_duration_ends_when_it_failed() -> None:
    row = classify_job(to_model(read("job-eval-final-failed.yaml")), EMPTY)
    assert row.finished == datetime(2026, 8, 3, 14, 31, 9, tzinfo=UTC)
    assert row.duration(NOW.replace(hour=23)) == row.finished - row.started  # type: ignore[operator]


def test_job_with_a_failed_pod_and_retries_left_is_restarting() -> None:
    obj = read("job-prepare-running.yaml")
    obj["status"]["failed"] = 1
    row = classify_job(to_model(obj), EMPTY)
    assert row.state is StepState.RESTARTING
    assert row.message == "1 pod(s) failed of 3 allowed; retrying"


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("pytorchjob-train-phase-1-suspended.yaml", StepState.QUEUED),
        ("pytorchjob-train-phase-1-running.yaml", StepState.RUNNING),
        ("pytorchjob-train-phase-1-restarting.yaml", StepState.RESTARTING),
        ("pytorchjob-train-phase-1-succeeded.yaml", StepState.SUCCEEDED),
    ],
)
def test_pytorchjob_states(fixture: str, state: StepState) -> None:
    obj = read(fixture)
    row = classify_custom(obj, EMPTY)
    assert (row.state, row.kind, row.name) == (state, "PyTorchJob", obj["metadata"]["name"])


def test_pytorchjob_without_status_waits_for_the_operator() -> None:
    obj = read("pytorchjob-train-phase-1-running.yaml")
    del obj["status"]
    row = classify_custom(obj, EMPTY)
    assert row.state is StepState.WAITING
    assert row.message == "waiting for the training operator to report status"


def test_resumed_pytorchjob_counts_from_its_resume() -> None:
    row = classify_custom(read("pytorchjob-train-phase-1-running.yaml"), EMPTY)
    assert row.started == datetime(2026, 8, 3, 10, 2, tzinfo=UTC)
    assert row.message == "PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is running."


def test_crash_looping_pod_makes_the_step_restarting_with_a_warning() -> None:
    objects = run_objects(
        [
            "pytorchjob-train-phase-1-running.yaml",
            "pod-train-phase-1-master-running.yaml",
            "pod-train-phase-1-worker-crashloop.yaml",
        ]
    )
    row = classify_custom(read("pytorchjob-train-phase-1-running.yaml"), objects)
    assert row.state is StepState.RESTARTING
    assert row.warning
    assert row.message.startswith(
        "granite-demo-train-phase-1-3f9c2a1b-worker-0/pytorch: CrashLoopBackOff: back-off 2m40s"
    )
    assert (row.pods_ready, row.pods_total) == (1, 2)


def test_image_pull_error_makes_the_step_wait_with_a_warning() -> None:
    objects = run_objects(["job-eval-mt-bench-resumed.yaml", "pod-eval-mt-bench-image-pull.yaml"])
    row = classify_job(objects.jobs[0], objects)
    assert row.state is StepState.WAITING
    assert row.warning
    assert "ImagePullBackOff: Back-off pulling image" in row.message
    assert (row.pods_ready, row.pods_total) == (0, 1)


def test_finished_steps_ignore_pod_problems() -> None:
    objects = run_objects(["pod-train-phase-1-worker-crashloop.yaml"])
    row = classify_custom(read("pytorchjob-train-phase-1-succeeded.yaml"), objects)
    assert row.state is StepState.SUCCEEDED
    assert not row.warning


def test_checkpoint_from_the_master_log_tail() -> None:
    objects = run_objects(
        ["pod-train-phase-1-master-running.yaml", "pod-train-phase-1-worker-running.yaml"],
        ["granite-demo-train-phase-1-3f9c2a1b-master-0.log"],
    )
    row = classify_custom(read("pytorchjob-train-phase-1-running.yaml"), objects)
    assert row.checkpoint == (
        "/workspace/steps/granite-demo-train-phase-1-3f9c2a1b/checkpoints/hf_format/samples_12800"
    )


def test_checkpoint_from_a_termination_message() -> None:
    objects = run_objects(["pod-train-phase-2-master-succeeded.yaml"])
    row = classify_custom(read("pytorchjob-train-phase-2-succeeded.yaml"), objects)
    assert row.checkpoint is not None
    assert row.checkpoint.endswith("/samples_51200")


def test_no_checkpoint_for_jobs() -> None:
    objects = run_objects(["job-prepare-running.yaml", "pod-prepare-running.yaml"])
    assert classify_job(objects.jobs[0], objects).checkpoint is None


def test_every_step_gets_a_row_in_pipeline_order() -> None:
    status = classify_run(run_objects(["job-eval-final-failed.yaml"]), NOW)
    assert [s.step for s in status.steps] == [
        "prepare",
        "train-phase-1",
        "train-phase-2",
        "eval-mt-bench",
        "eval-final",
        "upload",
        "publish",
    ]
    assert status.failed
    assert status.steps[0].state is StepState.WAITING
    assert status.steps[0].message == "not created yet"


def test_newest_workload_of_a_step_wins() -> None:
    older = read("pytorchjob-train-phase-1-succeeded.yaml")
    newer = read("pytorchjob-train-phase-1-running.yaml")
    newer["metadata"]["name"] = "granite-demo-train-phase-1-0badc0de"
    newer["metadata"]["creationTimestamp"] = "2026-08-03T11:00:00Z"
    objects = RunObjects("granite-demo", "ilab", custom=(newer, older))
    row = classify_run(objects, NOW).steps[1]
    assert (row.name, row.state) == ("granite-demo-train-phase-1-0badc0de", StepState.RUNNING)


def test_argocd_resources_explain_waiting_steps_and_skip_pruned_ones() -> None:
    status = classify_run(run_objects(["application-retry.yaml"]), NOW)
    assert status.steps[1].message == "not applied yet by Argo CD (sync wave 20)"
    assert status.engine[0].startswith("Argo CD Application granite-demo: OutOfSync at 4c1e9a7b")


def test_flux_dependency_messages_and_failures() -> None:
    objects = run_objects(["kustomizations-prepare-running.yaml"])
    status = classify_run(objects, NOW)
    assert status.steps[1].message == "dependency 'flux-system/granite-demo-prepare' is not ready"
    assert not status.steps[1].warning
    broken = dict(objects.kustomizations[2])
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "BuildFailed",
        "message": "kustomize build failed",
    }
    broken["status"] = {"conditions": [ready]}
    status = classify_run(RunObjects("granite-demo", "ilab", kustomizations=(broken,)), NOW)
    assert (status.steps[2].message, status.steps[2].warning) == ("kustomize build failed", True)
    assert status.engine == ("Flux: 0/1 step Kustomizations ready",)


def test_empty_run() -> None:
    assert EMPTY.empty
    status = classify_run(EMPTY, NOW)
    assert {s.state for s in status.steps} == {StepState.WAITING}
    assert not status.finished
