"""Checkpoint folders instructlab-training writes: `hf_format/samples_<N>`, `full_state/epoch_<N>`.

Full states (weights + optimizer, ~12 bytes per parameter) are what a re-created pod resumes
from; with `fullState: last` only the newest complete one is kept.

Order is by N, parsed from the name, never by mtime: copies, restores and NFS clocks change
mtimes, while N is what the trainer wrote.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

_SAMPLES = re.compile(r"^samples_(\d+)$")
_WEIGHTS = ("*.safetensors", "*.bin")


@dataclass(frozen=True, order=True)
class Checkpoint:
    samples: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(any(path.glob(pattern)) for pattern in _WEIGHTS)


def hf_checkpoints(hf_format: Path) -> list[Checkpoint]:
    """Complete `samples_N` checkpoints under `hf_format`, ascending by N."""
    if not hf_format.is_dir():
        return []
    found = []
    for child in hf_format.iterdir():
        match = _SAMPLES.match(child.name)
        if match and child.is_dir():
            if is_model_dir(child):
                found.append(Checkpoint(int(match.group(1)), child))
            else:
                log.warning("skipping %s: no config.json or weights", child)
    return sorted(found)


def resolve_model_path(path: Path) -> Path:
    """A model folder as is, or the highest complete `samples_N` checkpoint under `path`."""
    if (path / "config.json").is_file():
        return path
    checkpoints = hf_checkpoints(path)
    if not checkpoints:
        raise StepError(f"{path} is neither a model folder nor holds samples_N checkpoints")
    best = checkpoints[-1]
    log.info("model: %s (highest of %d checkpoints)", best.path, len(checkpoints))
    return best.path


def quarantine_incomplete_full_state(ckpt_dir: Path) -> list[Path]:
    """Move `full_state/epoch_N` folders without training metadata out of the trainer's way.

    instructlab-training resumes from the highest `full_state/epoch_N` and fails on one a
    killed pod left half-written; moved aside, the next-lower complete one is used.
    """
    full_state = ckpt_dir / "full_state"
    if not full_state.is_dir():
        return []
    moved = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for child in sorted(full_state.iterdir()):
        if not (child / "training_metadata.json").is_file():
            target = ckpt_dir / "full_state.incomplete" / f"{child.name}-{stamp}"
            target.parent.mkdir(exist_ok=True)
            child.rename(target)
            log.warning("moved incomplete full-state checkpoint %s to %s", child, target)
            moved.append(target)
    return moved


_EPOCH = re.compile(r"^epoch_(\d+)$")


def prune_full_states(ckpt_dir: Path) -> list[Path]:
    """Delete every `full_state/epoch_N` below the highest complete one (`fullState: last`).

    Complete means `training_metadata.json` exists: instructlab-training writes it after the
    state itself. The highest complete state is what a re-created pod resumes from, so it
    stays; a higher one still being written stays too.
    """
    full_state = ckpt_dir / "full_state"
    if not full_state.is_dir():
        return []
    epochs = sorted(
        (int(m.group(1)), child)
        for child in full_state.iterdir()
        if (m := _EPOCH.match(child.name)) and child.is_dir() and not child.is_symlink()
    )
    complete = [n for n, child in epochs if (child / "training_metadata.json").is_file()]
    if not complete:
        return []
    newest = max(complete)
    removed = []
    for n, child in epochs:
        if n < newest:
            shutil.rmtree(child)
            log.info("deleted full state %s: epoch_%d is complete (fullState: last)", child, newest)
            removed.append(child)
    return removed


class FullStatePruner:
    """Prunes older full states while training runs (a thread in the master pod), so the
    volume never holds more than two: the newest complete one and the one being written."""

    def __init__(self, ckpt_dir: Path, interval_s: float = 30.0) -> None:
        self._ckpt_dir = ckpt_dir
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="full-state-pruner", daemon=True)
        self.removed: list[Path] = []

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sweep()

    def sweep(self) -> None:
        try:
            self.removed += prune_full_states(self._ckpt_dir)
        except OSError as exc:  # a folder deleted under us, NFS hiccups: try again later
            log.warning("pruning full states in %s failed: %s", self._ckpt_dir, exc)

    def __enter__(self) -> FullStatePruner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sweep()
