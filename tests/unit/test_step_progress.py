"""Progress inside a step: tailing instructlab-training's metrics file, the progress file,
the log line status reads back, and evaluation progress."""

from __future__ import annotations

import json
from pathlib import Path

from ilab_gitops.steps.progress import (
    METRICS_FILE,
    MetricsTail,
    Progress,
    evaluation_progress,
    last_progress,
    log_line,
    parse_log_line,
    progress_path,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entry(step: int, epoch: int, seen: int, loss: float) -> str:
    return json.dumps(
        {
            "epoch": epoch,
            "step": step,
            "samples_seen": seen,
            "total_samples": 1000,
            "overall_throughput": 9.0,
            "num_tokens_rank0": 2000,
            "avg_loss": loss,
            "timestamp": "2026-11-24T09:00:00",
        }
    )


def test_tail_reads_whole_lines_and_writes_progress(tmp_path: Path) -> None:
    output = tmp_path / "steps" / "r1-train-phase-1-0123abcd"
    output.mkdir(parents=True)
    metrics = output / "checkpoints" / METRICS_FILE
    metrics.parent.mkdir()
    clock = Clock()
    lines: list[str] = []
    tail = MetricsTail(metrics, output, "train-phase-1", epochs=7, clock=clock, emit=lines.append)
    assert tail.poll() is None  # no file yet
    metrics.write_text(json.dumps({"hparams": True}) + "\n" + _entry(1, 0, 100, 2.5) + "\n")
    clock.now += 10
    first = tail.poll()
    assert first is not None and first.samplesSeen == 100 and first.epoch == 1
    assert first.samplesPerSecond == 9.0  # no measured rate yet: the library's throughput
    # two more steps, the last one half written
    with metrics.open("a") as handle:
        handle.write(_entry(2, 0, 1100, 2.0) + "\n" + _entry(3, 1, 2870, 1.5) + "\n")
        handle.write('{"epoch": 1, "step": 4, "samp')
    clock.now += 100
    progress = tail.poll()
    assert progress is not None
    assert progress.epoch == 2 and progress.epochs == 7
    assert progress.samplesSeen == 2870 and progress.samplesTotal == 7000
    assert progress.percent == 41.0
    assert progress.lastLoss == 1.5
    assert progress.samplesPerSecond == 27.7  # (2870 - 100) / 100 s
    assert progress.tokensPerSecond == 40.0  # 2 lines x 2000 tokens / 100 s
    assert progress.etaSeconds == round((7000 - 2870) / 27.7)
    assert progress.elapsedSeconds == 110
    assert progress.describe() == "epoch 2/7, 41 %"
    on_disk = Progress.model_validate_json(progress_path(output).read_text())
    assert on_disk == progress
    assert progress_path(output) == tmp_path / "steps" / "r1-train-phase-1-0123abcd.progress.json"
    assert [parse_log_line(line) for line in lines] == [first, progress]
    # the half-written line completes
    with metrics.open("a") as handle:
        handle.write('les_seen": 3000, "total_samples": 1000, "avg_loss": 1.4}\n')
    clock.now += 5
    done = tail.poll()
    assert done is not None and done.samplesSeen == 3000 and done.lastLoss == 1.4


def test_context_manager_polls_once_more_on_exit(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    metrics = tmp_path / METRICS_FILE
    lines: list[str] = []
    with MetricsTail(metrics, output, "train-phase-2", epochs=2, interval=3600, emit=lines.append):
        metrics.write_text(_entry(1, 1, 2000, 0.5) + "\n")
    assert len(lines) == 1
    progress = parse_log_line(lines[0])
    assert progress is not None and progress.percent == 100.0


def test_last_progress_in_a_log_tail_ignores_other_and_hostile_lines() -> None:
    one = Progress(step="train-phase-1", kind="training", elapsedSeconds=5, percent=10.0)
    two = Progress(step="train-phase-1", kind="training", elapsedSeconds=9, percent=12.5)
    tail = "\n".join(
        [
            "INFO starting",
            log_line(one),
            "some library output",
            log_line(two),
            "ilab-gitops-progress {not json",
            'ilab-gitops-progress {"step": "x", "kind": "training", "evil": 1}',
            "ilab-gitops-progress " + "x" * 100_000,
        ]
    )
    assert last_progress(tail) == two
    assert last_progress("nothing here") is None


def test_evaluation_progress(tmp_path: Path) -> None:
    output = tmp_path / "r1-eval-mt-bench-0123abcd"
    lines: list[str] = []
    progress = evaluation_progress(
        output, "eval-mt-bench", done=2, total=5, elapsed=600, best=("samples_200", 7.1),
        emit=lines.append,
    )  # fmt: skip
    assert progress.describe() == "checkpoint 2/5, 40 %"
    assert progress.etaSeconds == 900
    assert progress.bestCheckpoint == "samples_200" and progress.bestScore == 7.1
    assert Progress.model_validate_json(progress_path(output).read_text()) == progress
    assert parse_log_line(lines[0]) == progress
