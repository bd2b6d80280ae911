"""Checkpoint folders instructlab-training writes: `hf_format/samples_<N>`, `full_state/epoch_<N>`.

Order is by N, parsed from the name, never by mtime: copies, restores and NFS clocks change
mtimes, while N is what the trainer wrote.
"""

from __future__ import annotations

import logging
import re
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
