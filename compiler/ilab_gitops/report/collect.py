"""Gather a run's results folder from the workspace PVC (the publish step does this).

Every step writes under `<workspace>/steps/<step name>/` with its `.done.json` marker; the
training steps keep instructlab-training's metrics file in `checkpoints/`. A step re-run
under a new name leaves the old folder: per step the marker that finished last wins (and,
for phase 2, the folder the candidate came from). Symbolic links are not followed and
sizes are capped, so nothing outside the steps folder is read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import ValidationError

from ilab_gitops.report.inputs import (
    MARKERS_DIR,
    MAX_JSON_BYTES,
    MAX_METRICS_BYTES,
    METRICS_DIR,
    PHASES,
    TRAINING_METRICS_FILE,
)
from ilab_gitops.steps.markers import MARKER_NAME, Marker


def _marker(folder: Path) -> Marker | None:
    path = folder / MARKER_NAME
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
        return None
    try:
        return Marker.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def step_folders(steps_dir: Path, run: str) -> dict[str, tuple[Path, Marker]]:
    """The finished folder of each step of `run`, by step id (the latest finish wins)."""
    found: dict[str, tuple[Path, Marker]] = {}
    for folder in sorted(steps_dir.iterdir()):
        if folder.is_symlink() or not folder.is_dir() or folder.name.startswith("."):
            continue
        marker = _marker(folder)
        if marker is None or marker.run != run:
            continue
        known = found.get(marker.step)
        if known is None or (marker.finishedAt, folder.name) > (known[1].finishedAt, known[0].name):
            found[marker.step] = (folder, marker)
    return found


def _copy_capped(source: Path, dest: Path, limit: int) -> bool:
    if source.is_symlink() or not source.is_file() or source.stat().st_size > limit:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return True


def collect(steps_dir: Path, run: str, dest: Path, candidate: Path | None = None) -> list[str]:
    """Copy the markers and training metrics of `run` into `dest` (the results-folder layout
    of `ilab_gitops.report.inputs`); returns the relative paths written."""
    folders = step_folders(steps_dir, run)
    if candidate is not None:
        # The candidate checkpoint lives in the phase-2 folder it came from.
        for folder in sorted(steps_dir.iterdir()):
            marker = _marker(folder) if folder in candidate.parents else None
            if marker is not None and marker.run == run and marker.step == "train-phase-2":
                folders["train-phase-2"] = (folder, marker)
    written: list[str] = []
    for step, (folder, _) in sorted(folders.items()):
        rel = f"{MARKERS_DIR}/{step}.json"
        if _copy_capped(folder / MARKER_NAME, dest / rel, MAX_JSON_BYTES):
            written.append(rel)
    for phase in PHASES:
        if phase not in folders:
            continue
        source = folders[phase][0] / "checkpoints" / TRAINING_METRICS_FILE
        rel = f"{METRICS_DIR}/{phase}.jsonl"
        if _copy_capped(source, dest / rel, MAX_METRICS_BYTES):
            written.append(rel)
    return written


def report_from_workspace(
    steps_dir: Path, run: str, results_json: bytes, dest: Path, candidate: Path | None = None
) -> list[str]:
    """Gather the run's inputs under `dest/inputs`, then write `dest/report.html` and the
    plots beside it (what the publish step uploads); returns the report files written,
    relative to `dest`."""
    from ilab_gitops.report.build import REPORT_FILE, build, write
    from ilab_gitops.report.inputs import RESULTS_FILE

    inputs = dest / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / RESULTS_FILE).write_bytes(results_json)
    collect(steps_dir, run, inputs, candidate)
    made = build(inputs, run)
    written = write(made, dest / REPORT_FILE, dest)
    return sorted(path.relative_to(dest).as_posix() for path in written)
