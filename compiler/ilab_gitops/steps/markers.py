"""The done marker and all-or-nothing output folders.

A step's output folder appears in one `rename` with its marker already inside, so
downstream steps and re-runs never see half a result: either `<outputPath>/.done.json`
exists and everything it lists is there, or the folder does not exist. Steps that must
keep partial state across pod restarts (training checkpoints) write in place and add the
marker last instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MARKER_NAME = ".done.json"
STAGING_INFIX = ".staging-"

log = logging.getLogger(__name__)


class Marker(BaseModel):
    """Contents of `.done.json`: what the step produced, with sha256 of every file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schemaVersion: str = "1"
    run: str
    step: str
    stepName: str
    finishedAt: str
    files: dict[str, str] = Field(description="Path relative to the output folder -> sha256.")
    details: dict[str, Any] = Field(default_factory=dict)


def marker_path(output: Path) -> Path:
    return output / MARKER_NAME


def read_marker(output: Path) -> Marker | None:
    """The marker, or None when the step has not finished (an unreadable one counts as not)."""
    path = marker_path(output)
    try:
        return Marker.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("ignoring unreadable marker %s: %s", path, exc)
        return None


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Mapping[str, Any] | BaseModel) -> None:
    """Write JSON via a temp file + rename so a reader sees the old or the new file only."""
    text = (
        data.model_dump_json(indent=2)
        if isinstance(data, BaseModel)
        else json.dumps(data, indent=2, sort_keys=True)
    )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class StepIdentity(Protocol):
    """What names a step's run: every step's params have these."""

    @property
    def run(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def stepName(self) -> str: ...


def done_marker(params: StepIdentity, *, files: dict[str, str], details: dict[str, Any]) -> Marker:
    """The marker of a step finishing now."""
    return Marker(
        run=params.run,
        step=params.step,
        stepName=params.stepName,
        finishedAt=now_rfc3339(),
        files=files,
        details=details,
    )


def write_marker(output: Path, marker: Marker) -> None:
    write_json_atomic(marker_path(output), marker)


def _staging_dirs(output: Path) -> list[Path]:
    prefix = f".{output.name}{STAGING_INFIX}"
    if not output.parent.is_dir():
        return []
    return sorted(p for p in output.parent.iterdir() if p.name.startswith(prefix))


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `output`; on success rename it to `output`.

    The body must write the marker into the staging folder last. Staging folders left by
    earlier attempts are removed first (a Job runs one pod at a time, so they are dead).
    On error the staging folder is removed: nothing half-written stays behind.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    for stale in _staging_dirs(output):
        log.info("removing staging folder of an earlier attempt: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = output.parent / f".{output.name}{STAGING_INFIX}{socket.gethostname()}-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
        if not marker_path(staging).is_file():
            raise RuntimeError(f"step wrote no marker into {staging}")
        if read_marker(output) is not None:
            log.info("%s finished meanwhile in another attempt; discarding this one", output)
            shutil.rmtree(staging)
            return
        if output.exists():
            # A folder without a marker is an incomplete leftover, never a result.
            shutil.rmtree(output)
        os.rename(staging, output)
        _fsync_dir(output.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
