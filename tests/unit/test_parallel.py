"""Rendering split across worker processes gives exactly the serial result."""

from __future__ import annotations

import pytest

from ilab_gitops.emit import parallel
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run


def _pairs(count: int) -> list[parallel.Pair]:
    envs = [load_environment(p) for p in ENVIRONMENTS]
    base = load_run(EXAMPLES[0]).model_dump(mode="json")
    pairs = []
    for i in range(count):
        data = {**base, "metadata": {"name": f"run-{i:03d}"}}
        pairs.append((PipelineRun.model_validate(data), envs[i % len(envs)]))
    return pairs


@pytest.mark.skipif("fork" not in parallel._start_methods(), reason="needs the fork start method")
def test_parallel_render_equals_serial() -> None:
    pairs = _pairs(parallel.PARALLEL_MIN_RUNS + 5)
    serial = parallel.render_runs(pairs, workers=1)
    split = parallel.render_runs(pairs, workers=3)
    assert list(serial) != [] and len(serial) == len(pairs)
    assert split == serial


def test_small_batches_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process pool was started for a small batch")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    pairs = _pairs(3)
    envs = [load_environment(p).metadata.name for p in ENVIRONMENTS]
    assert sorted(parallel.render_runs(pairs, workers=4)) == sorted(
        f"{envs[i % len(envs)]}/run-{i:03d}" for i in range(3)
    )
