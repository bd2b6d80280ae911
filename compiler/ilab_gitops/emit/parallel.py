"""Compile and render many runs on every core.

A runs repo holds hundreds to thousands of runs and every push re-renders all of them; compile
and render are pure, CPU-bound and independent per run, so large batches are split across
forked worker processes. Results are keyed by run name, so the output does not depend on how
the work was split or in which order workers finish.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from ilab_gitops.emit.render import render_run, run_folder
from ilab_gitops.manifests import compile_run
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

#: Below this many runs a worker's start-up costs more than it saves.
PARALLEL_MIN_RUNS = 64

Pair = tuple[PipelineRun, Environment]
RunFiles = dict[str, dict[str, str]]


def _render_chunk(pairs: Sequence[Pair]) -> RunFiles:
    return {
        run_folder(env.metadata.name, run.metadata.name): render_run(compile_run(run, env))
        for run, env in pairs
    }


#: The batch being rendered; forked workers inherit it instead of receiving it pickled.
_BATCH: list[Sequence[Pair]] = []


def _render_share(share: tuple[int, int]) -> RunFiles:
    start, step = share
    return _render_chunk(_BATCH[-1][start::step])


def _workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def render_runs(pairs: Sequence[Pair], *, workers: int | None = None) -> RunFiles:
    """{`<environment>/<run>`: files of `render_run`} for every (run, environment) pair.

    With `count` processes, share k is every count-th pair from k: the parent renders share
    0 itself while forked workers render the others, and only rendered text crosses a pipe.
    """
    count = workers if workers is not None else _workers()
    if count < 2 or len(pairs) < PARALLEL_MIN_RUNS or "fork" not in _start_methods():
        return _render_chunk(pairs)
    _BATCH.append(pairs)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=count - 1, mp_context=context) as pool:
            others = pool.map(_render_share, [(k, count) for k in range(1, count)])
            result = _render_share((0, count))
            for part in others:
                result.update(part)
    finally:
        _BATCH.pop()
    return result


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()
