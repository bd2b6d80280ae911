"""Compile and render many runs on every core.

A runs repo holds hundreds to thousands of runs and every push re-renders all of them; compile
and render are pure, CPU-bound and independent per run, so large batches are split across
forked worker processes. Results are keyed by run name, so the output does not depend on how
the work was split or in which order workers finish.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

from ilab_gitops.emit import output
from ilab_gitops.emit.render import render_run, run_folder
from ilab_gitops.manifests import compile_run
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

#: Below this many runs a worker's start-up costs more than it saves.
PARALLEL_MIN_RUNS = 64
#: Runs per chunk handed to a worker and back: large enough that a chunk's pickling and
#: scheduling cost little next to its rendering, small enough to keep memory flat.
CHUNK_RUNS = 16

Pair = tuple[PipelineRun, Environment]
RunFiles = dict[str, dict[str, str]]


def _render_chunk(pairs: Sequence[Pair]) -> RunFiles:
    return {
        run_folder(env.metadata.name, run.metadata.name): render_run(compile_run(run, env))
        for run, env in pairs
    }


#: The batch being rendered; forked workers inherit it instead of receiving it pickled.
_BATCH: list[Sequence[Pair]] = []


def _render_range(span: tuple[int, int]) -> RunFiles:
    start, stop = span
    return _render_chunk(_BATCH[-1][start:stop])


def worker_count() -> int:
    """Processes worth using: the cores this process may run on, at most 8."""
    return _workers()


def _workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def render_runs(pairs: Sequence[Pair], *, workers: int | None = None) -> RunFiles:
    """{`<environment>/<run>`: files of `render_run`} for every (run, environment) pair."""
    result: RunFiles = {}
    for part in iter_render_runs(pairs, workers=workers):
        result.update(part)
    return result


def iter_render_runs(pairs: Sequence[Pair], *, workers: int | None = None) -> Iterator[RunFiles]:
    """The files of every pair, a chunk of runs at a time, so that the caller can write and
    drop each chunk: memory holds the specs and a few chunks, not the whole rendered tree.

    Large batches go to `count` forked workers, chunk by chunk in order; only rendered text
    crosses a pipe. Small ones are rendered here.
    """
    count = workers if workers is not None else _workers()
    if count < 2 or len(pairs) < PARALLEL_MIN_RUNS or "fork" not in _start_methods():
        for start in range(0, len(pairs), CHUNK_RUNS):
            yield _render_chunk(pairs[start : start + CHUNK_RUNS])
        return
    _BATCH.append(pairs)
    try:
        ranges = [(s, min(s + CHUNK_RUNS, len(pairs))) for s in range(0, len(pairs), CHUNK_RUNS)]
        with output.fork_pool(count) as pool:
            # A bounded window of chunks in flight, in order: `pool.map` would submit them
            # all, and a slow writer would let every rendered chunk pile up in memory.
            pending: deque[Future[RunFiles]] = deque()
            for span in ranges:
                pending.append(pool.submit(_render_range, span))
                if len(pending) >= 2 * count:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _BATCH.pop()


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()
