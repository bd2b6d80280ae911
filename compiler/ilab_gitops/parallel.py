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

from ilab_gitops.manifests import compile_run
from ilab_gitops.render import render_run
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

#: Below this many runs a worker's start-up costs more than it saves.
PARALLEL_MIN_RUNS = 64

Pair = tuple[PipelineRun, Environment]
RunFiles = dict[str, dict[str, str]]


def _render_chunk(pairs: Sequence[Pair]) -> RunFiles:
    return {run.metadata.name: render_run(compile_run(run, env)) for run, env in pairs}


def _workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def render_runs(pairs: Sequence[Pair], *, workers: int | None = None) -> RunFiles:
    """{run name: files of `render_run`} for every (run, environment) pair."""
    count = workers if workers is not None else _workers()
    if count < 2 or len(pairs) < PARALLEL_MIN_RUNS or "fork" not in _start_methods():
        return _render_chunk(pairs)
    chunks = [pairs[i::count] for i in range(count)]
    context = multiprocessing.get_context("fork")
    result: RunFiles = {}
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        for part in pool.map(_render_chunk, chunks):
            result.update(part)
    return result


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()
