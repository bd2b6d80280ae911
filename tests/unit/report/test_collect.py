"""Gathering a run's results folder from a workspace's step folders (what publish reads)."""

from __future__ import annotations

import json
from pathlib import Path

from ilab_gitops.report.collect import collect, step_folders
from ilab_gitops.report.inputs import TRAINING_METRICS_FILE, load
from tests.support.report_data import RUN, loss_lines, marker


def _step(steps: Path, name: str, step: str, finished: str, run: str = RUN) -> Path:
    folder = steps / name
    folder.mkdir(parents=True)
    (folder / ".done.json").write_text(json.dumps(marker(step, finished, run)))
    return folder


def test_collect_copies_markers_and_metrics_of_the_run(tmp_path: Path) -> None:
    steps = tmp_path / "workspace" / "steps"
    _step(steps, f"{RUN}-prepare-1", "prepare", "2026-11-24T08:05:00Z")
    phase1 = _step(steps, f"{RUN}-train-phase-1-1", "train-phase-1", "2026-11-24T14:40:00Z")
    (phase1 / "checkpoints").mkdir()
    (phase1 / "checkpoints" / TRAINING_METRICS_FILE).write_text(
        "\n".join(loss_lines(20, 2.0, 1.0, 5, 100)) + "\n"
    )
    _step(steps, "other-run-prepare-1", "prepare", "2026-11-30T08:05:00Z", run="other-run")
    (steps / f"{RUN}-train-phase-2-1").mkdir()  # started, never finished: no marker
    dest = tmp_path / "results"
    written = collect(steps, RUN, dest)
    assert written == [
        "markers/prepare.json",
        "markers/train-phase-1.json",
        "metrics/train-phase-1.jsonl",
    ]
    data = load(dest, RUN)
    assert sorted(data.markers) == ["prepare", "train-phase-1"]
    assert data.markers["prepare"].finishedAt == "2026-11-24T08:05:00Z"  # not the other run's
    assert len(data.metrics["train-phase-1"].points) == 20


def test_latest_attempt_wins_but_the_candidates_phase_2_folder_is_preferred(
    tmp_path: Path,
) -> None:
    steps = tmp_path / "steps"
    old = _step(steps, f"{RUN}-train-phase-2-aaaa", "train-phase-2", "2026-11-24T10:00:00Z")
    new = _step(steps, f"{RUN}-train-phase-2-bbbb", "train-phase-2", "2026-11-25T10:00:00Z")
    assert step_folders(steps, RUN)["train-phase-2"][0] == new
    for folder, steps_count in ((old, 3), (new, 7)):
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / TRAINING_METRICS_FILE).write_text(
            "\n".join(loss_lines(steps_count, 2.0, 1.0, 5, 100)) + "\n"
        )
    candidate = old / "checkpoints" / "hf_format" / "samples_100"
    collect(steps, RUN, tmp_path / "r", candidate=candidate)
    assert len(load(tmp_path / "r", RUN).metrics["train-phase-2"].points) == 3


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    phase1 = _step(steps, f"{RUN}-train-phase-1-1", "train-phase-1", "2026-11-24T14:40:00Z")
    outside = tmp_path / "outside.jsonl"
    outside.write_text("\n".join(loss_lines(5, 2.0, 1.0, 5, 100)) + "\n")
    (phase1 / "checkpoints").mkdir()
    (phase1 / "checkpoints" / TRAINING_METRICS_FILE).symlink_to(outside)
    (steps / "linked").symlink_to(phase1)
    written = collect(steps, RUN, tmp_path / "r")
    assert written == ["markers/train-phase-1.json"]


def test_results_json_stands_for_the_publish_marker(tmp_path: Path) -> None:
    """The publish step builds the report before its own marker exists."""
    from tests.support.report_data import write_finished

    folder = write_finished(tmp_path / "r")
    (folder / "markers" / "publish.json").unlink()
    data = load(folder, RUN)
    assert data.markers["publish"].finishedAt == data.results.finishedAt if data.results else False
    assert not any("done marker" in note for note in data.notes)
