"""What `ilab-gitops status` reports: one row per pipeline step. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ilab_gitops.steps.progress import Progress


class StepState(StrEnum):
    """A step's state, in the order a step normally goes through them."""

    WAITING = "waiting"  # nothing runs yet: earlier steps, the engine, or a pod cannot start
    QUEUED = "queued"  # created, held by Kueue (suspended) until there is quota
    RUNNING = "running"
    RESTARTING = "restarting"  # a pod failed or crash-loops and is being retried
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.FAILED)


@dataclass(frozen=True)
class StepStatus:
    """One step of a run, as the cluster shows it."""

    step: str
    state: StepState
    kind: str | None = None  # Job, PyTorchJob, ...; None before the workload exists
    name: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    pods_ready: int = 0
    pods_total: int = 0
    message: str = ""
    checkpoint: str | None = None
    warning: bool = False  # something needs a person: crash loop, image pull error, ...
    progress: Progress | None = None  # the step's last progress log line, while it runs

    def duration(self, now: datetime) -> timedelta | None:
        """Run time so far (or in total, once finished); None before the step started."""
        if self.started is None:
            return None
        end = self.finished or now
        return max(end - self.started, timedelta(0))


@dataclass(frozen=True)
class RunStatus:
    """Every step of one run, observed at `observed_at`."""

    run: str
    namespace: str
    observed_at: datetime
    steps: tuple[StepStatus, ...]
    engine: tuple[str, ...] = field(default=())  # one line per GitOps engine object seen

    @property
    def failed(self) -> bool:
        return any(s.state is StepState.FAILED for s in self.steps)

    @property
    def succeeded(self) -> bool:
        return bool(self.steps) and all(s.state is StepState.SUCCEEDED for s in self.steps)

    @property
    def finished(self) -> bool:
        return self.failed or self.succeeded
