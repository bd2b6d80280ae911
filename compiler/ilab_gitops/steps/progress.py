"""Progress of a running step, for people following the run.

Training: instructlab-training (0.16.2) appends one JSON line per optimizer step to
`<ckpt_output_dir>/training_params_and_metrics_global0.jsonl` (`epoch` 0-based, `step`,
`samples_seen` cumulative over the run, `total_samples` per epoch, `overall_throughput`
in samples/s, `num_tokens_rank0`, `avg_loss`, `timestamp`). A thread tails that file (no
patch to the library) and keeps a small progress file beside the step's output folder,
`<steps>/<step name>.progress.json`, replaced atomically. Evaluation writes the same file
after each checkpoint. Each update is also printed as one log line starting with
`LOG_PREFIX`: the workspace PVC is not reachable from a laptop, the pod log is (pods/log).
With a `reporter` (steps/progress_status.py), the short form also goes to the step's commit
status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ilab_gitops.steps.markers import write_json_atomic

LOG_PREFIX = "ilab-gitops-progress "
METRICS_FILE = "training_params_and_metrics_global0.jsonl"
MAX_LINE = 64 * 1024


class Progress(BaseModel):
    """What `ilab-gitops status` shows for a running step (also its `-o json`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schemaVersion: Literal["1"] = "1"
    step: str
    kind: Literal["training", "evaluation"]
    elapsedSeconds: int
    etaSeconds: int | None = None
    percent: float | None = None
    epoch: int | None = None  # 1-based
    epochs: int | None = None
    samplesSeen: int | None = None
    samplesTotal: int | None = None
    samplesPerSecond: float | None = None
    tokensPerSecond: float | None = None  # rank 0's tokens
    lastLoss: float | None = None
    checkpointsDone: int | None = None
    checkpointsTotal: int | None = None
    bestCheckpoint: str | None = None
    bestScore: float | None = None

    def describe(self) -> str:
        """Short text for a commit status description: "epoch 3/7, 41 %"."""
        pct = f"{self.percent:.0f} %" if self.percent is not None else "?"
        if self.kind == "training" and self.epoch is not None and self.epochs:
            return f"epoch {self.epoch}/{self.epochs}, {pct}"
        if self.checkpointsTotal:
            return f"checkpoint {self.checkpointsDone or 0}/{self.checkpointsTotal}, {pct}"
        return pct


class Reporter(Protocol):
    """Where progress goes besides the file and the log (progress_status.ConfigMapReporter)."""

    def report(self, progress: Progress, *, final: bool = False) -> bool: ...


def progress_path(output: Path) -> Path:
    return output.parent / f"{output.name}.progress.json"


def log_line(progress: Progress) -> str:
    return LOG_PREFIX + progress.model_dump_json(exclude_none=True)


def parse_log_line(line: str) -> Progress | None:
    """The progress in a log line written by `log_line`, else None (never raises)."""
    start = line.find(LOG_PREFIX)
    if start < 0 or len(line) > MAX_LINE:
        return None
    try:
        return Progress.model_validate_json(line[start + len(LOG_PREFIX) :].strip())
    except ValueError:
        return None


def last_progress(log_tail: str) -> Progress | None:
    """The newest progress in a pod log's tail."""
    for line in reversed(log_tail.splitlines()):
        found = parse_log_line(line)
        if found is not None:
            return found
    return None


def _eta(done: float, total: float, rate: float | None) -> int | None:
    if rate is None or rate <= 0 or total <= 0:
        return None
    return max(round((total - done) / rate), 0)


class MetricsTail:
    """Tails instructlab-training's metrics file and publishes progress while it trains.

    `poll()` reads whole new lines (a half-written last line waits for the next poll);
    as a context manager it polls every `interval` seconds from a daemon thread and once
    more on exit. Rates are measured from this tail's own first observation (a resumed run
    starts with samples already seen).
    """

    def __init__(
        self,
        metrics: Path,
        output: Path,
        step: str,
        epochs: int,
        *,
        interval: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] = print,
        reporter: Reporter | None = None,
    ) -> None:
        self.reporter = reporter
        self.metrics, self.target, self.step, self.epochs = (
            metrics,
            progress_path(output),
            step,
            epochs,
        )
        self.interval, self.clock, self.emit = interval, clock, emit
        self.started = clock()
        self._offset = 0
        self._first: tuple[float, int] | None = None  # (clock, samples) at first observation
        self._tokens = 0
        self._last: dict[str, object] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: Progress | None = None

    def _read_new(self) -> list[dict[str, object]]:
        try:
            size = self.metrics.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # replaced or truncated: start over
            self._offset = 0
        entries = []
        with self.metrics.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(max(size - self._offset, 0))
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        for raw in chunk[: end + 1].splitlines():
            try:
                entry = json.loads(raw) if len(raw) <= MAX_LINE else None
            except ValueError:
                continue
            if isinstance(entry, dict) and "step" in entry and "samples_seen" in entry:
                entries.append(entry)
        return entries

    def poll(self, *, final: bool = False) -> Progress | None:
        now = self.clock()
        for entry in self._read_new():
            samples = entry.get("samples_seen")
            tokens = entry.get("num_tokens_rank0")
            if self._first is None:
                if isinstance(samples, int):
                    self._first = (now, samples)  # the window starts after this step
            elif isinstance(tokens, int):
                self._tokens += tokens
            self._last = entry
        if self._last is None:
            return None
        progress = self._progress(self._last, now)
        write_json_atomic(self.target, progress)
        self.emit(log_line(progress))
        if self.reporter is not None:
            self.reporter.report(progress, final=final)
        self.latest = progress
        return progress

    def _progress(self, entry: dict[str, object], now: float) -> Progress:
        def num(key: str) -> float | None:
            value = entry.get(key)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return float(value) if ok else None  # type: ignore[arg-type]

        seen, per_epoch, epoch = num("samples_seen"), num("total_samples"), num("epoch")
        total = per_epoch * self.epochs if per_epoch else None
        rate = tokens_rate = None
        if self._first is not None and seen is not None and now > self._first[0]:
            rate = (seen - self._first[1]) / (now - self._first[0]) or None
            tokens_rate = self._tokens / (now - self._first[0]) or None
        rate = rate or num("overall_throughput")
        return Progress(
            step=self.step,
            kind="training",
            elapsedSeconds=int(now - self.started),
            etaSeconds=_eta(seen, total, rate) if seen is not None and total else None,
            percent=round(min(seen / total * 100, 100.0), 1)
            if seen is not None and total
            else None,
            epoch=int(epoch) + 1 if epoch is not None else None,
            epochs=self.epochs,
            samplesSeen=int(seen) if seen is not None else None,
            samplesTotal=int(total) if total is not None else None,
            samplesPerSecond=round(rate, 3) if rate else None,
            tokensPerSecond=round(tokens_rate, 1) if tokens_rate else None,
            lastLoss=num("avg_loss"),
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __enter__(self) -> MetricsTail:
        self._thread = threading.Thread(target=self._loop, name="metrics-tail", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.poll(final=True)


def evaluation_progress(
    output: Path,
    step: str,
    *,
    done: int,
    total: int,
    elapsed: float,
    best: tuple[str, float] | None,
    emit: Callable[[str], None] = print,
    reporter: Reporter | None = None,
) -> Progress:
    """Write (and log) an evaluation step's progress after `done` of `total` checkpoints."""
    rate = done / elapsed if elapsed > 0 and done else None
    progress = Progress(
        step=step,
        kind="evaluation",
        elapsedSeconds=int(elapsed),
        etaSeconds=_eta(done, total, rate),
        percent=round(done / total * 100, 1) if total else None,
        checkpointsDone=done,
        checkpointsTotal=total,
        bestCheckpoint=best[0] if best else None,
        bestScore=best[1] if best else None,
    )
    write_json_atomic(progress_path(output), progress)
    emit(log_line(progress))
    if reporter is not None:
        reporter.report(progress, final=done >= total)
    return progress
