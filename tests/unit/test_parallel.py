"""Rendering split across worker processes gives exactly the serial result."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ilab_gitops.emit import output, parallel
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

    monkeypatch.setattr(output, "fork_pool", no_pool)
    pairs = _pairs(3)
    envs = [load_environment(p).metadata.name for p in ENVIRONMENTS]
    assert sorted(parallel.render_runs(pairs, workers=4)) == sorted(
        f"{envs[i % len(envs)]}/run-{i:03d}" for i in range(3)
    )


_HOLDER = """
import sys, time
from pathlib import Path
from ilab_gitops.emit import output

with output.locked(Path(sys.argv[1])):
    pool = output.fork_pool(2)  # as render makes it
    futures = [pool.submit(time.sleep, 60) for _ in range(2)]
    time.sleep(1)  # the workers have started
    print(" ".join(str(p) for p in pool._processes), flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif("fork" not in parallel._start_methods(), reason="needs the fork start method")
def test_a_killed_render_leaves_neither_its_lock_nor_its_workers(tmp_path: Path) -> None:
    """The OOM killer takes the parent alone: its workers die with it and do not keep the
    write lock, so the next render does not wait forever."""
    root = tmp_path / "rendered"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        workers = [int(p) for p in holder.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the lock is still held after the kill"
                time.sleep(0.05)
    finally:
        os.close(fd)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
