"""`RunStatus` -> text: a fixed-width table for people, JSON for programs. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ilab_gitops.status.model import RunStatus, StepState, StepStatus

if TYPE_CHECKING:
    from ilab_gitops.steps.progress import Progress

MESSAGE_WIDTH = 72
_HEADERS = ("STEP", "STATE", "STARTED", "DURATION", "PODS", "CHECKPOINT", "MESSAGE")
_SUMMARY_HEADERS = ("RUN", "STATE", "STEP", "DONE", "MESSAGE")


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def format_duration(value: timedelta | None) -> str:
    """`42s`, `3m05s`, `1h02m`, `2d03h`; `-` when unknown."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


BAR_WIDTH = 20


def progress_text(progress: Progress) -> str:
    """`[########------------] epoch 3/7, 41 % ETA 2h03m`."""
    bar = ""
    if progress.percent is not None:
        filled = round(BAR_WIDTH * min(max(progress.percent, 0.0), 100.0) / 100)
        bar = "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "] "
    eta = (
        f" ETA {format_duration(timedelta(seconds=progress.etaSeconds))}"
        if progress.etaSeconds is not None
        else ""
    )
    return f"{bar}{progress.describe()}{eta}"


def _cells(step: StepStatus, now: datetime, width: int) -> tuple[str, ...]:
    checkpoint = step.checkpoint.rstrip("/").rsplit("/", 1)[-1] if step.checkpoint else "-"
    pods = f"{step.pods_ready}/{step.pods_total}" if step.kind else "-"
    message = ("! " if step.warning else "") + step.message
    if step.progress is not None:
        message = f"{progress_text(step.progress)}  {message}".rstrip()
    return (
        step.step,
        step.state.value,
        rfc3339(step.started) or "-",
        format_duration(step.duration(now)),
        pods,
        checkpoint,
        _clip(message, width) if message else "-",
    )


def render_table(status: RunStatus, *, width: int = MESSAGE_WIDTH) -> str:
    """The run's steps as an aligned table, with the engines' view above it."""
    head = [
        f"run {status.run} in namespace {status.namespace} "
        f"(observed {rfc3339(status.observed_at)})",
        *status.engine,
        "",
    ]
    rows = [_HEADERS, *(_cells(s, status.observed_at, width) for s in status.steps)]
    return "\n".join([*head, *_columns(rows)]) + "\n"


def _step_json(step: StepStatus, now: datetime) -> dict[str, Any]:
    duration = step.duration(now)
    extra = {"progress": step.progress.model_dump(exclude_none=True)} if step.progress else {}
    return {
        **extra,
        "step": step.step,
        "state": step.state.value,
        "kind": step.kind,
        "name": step.name,
        "started": rfc3339(step.started),
        "finished": rfc3339(step.finished),
        "durationSeconds": int(duration.total_seconds()) if duration is not None else None,
        "podsReady": step.pods_ready,
        "podsTotal": step.pods_total,
        "message": step.message,
        "checkpoint": step.checkpoint,
        "warning": step.warning,
    }


def status_json(status: RunStatus) -> dict[str, Any]:
    return {
        "run": status.run,
        "namespace": status.namespace,
        "observedAt": rfc3339(status.observed_at),
        "engine": list(status.engine),
        "failed": status.failed,
        "succeeded": status.succeeded,
        "steps": [_step_json(s, status.observed_at) for s in status.steps],
    }


def render_json(status: RunStatus) -> str:
    return json.dumps(status_json(status), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def current_step(status: RunStatus) -> StepStatus | None:
    """The step that decides the run's state: the first failed one, else the first one not
    succeeded; None when every step succeeded."""
    for step in status.steps:
        if step.state is StepState.FAILED:
            return step
    return next((s for s in status.steps if s.state is not StepState.SUCCEEDED), None)


def render_summary(runs: Sequence[RunStatus], *, width: int = MESSAGE_WIDTH) -> str:
    """One line per run: the current step, its state and how many steps are done."""
    rows: list[tuple[str, ...]] = [_SUMMARY_HEADERS]
    for status in runs:
        step = current_step(status)
        done = sum(1 for s in status.steps if s.state is StepState.SUCCEEDED)
        rows.append(
            (
                status.run,
                step.state.value if step else StepState.SUCCEEDED.value,
                step.step if step else "-",
                f"{done}/{len(status.steps)}",
                _clip(step.message, width) if step and step.message else "-",
            )
        )
    return "\n".join(_columns(rows)) + "\n"


def render_summary_json(runs: Sequence[RunStatus]) -> str:
    data = [status_json(s) for s in runs]
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
