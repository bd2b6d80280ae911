"""Serve a model under evaluation with an OpenAI-compatible server inside the pod.

Production runs vLLM's OpenAI API server as a child process (`vllm serve`, as
`$ILAB_VLLM_PYTHON -m vllm.entrypoints.cli.main serve`); the eval image pins vLLM in a
virtualenv of its own
(runtime_images/eval). All of
the process handling is here, behind `Serve`: a callable that, given a model folder and a
short name, yields the server's `/v1` URL while the server runs.

- The server gets its own process group (vLLM forks engine and worker processes), and
  shutdown signals the whole group: SIGTERM, then SIGKILL after a grace period. Nothing is
  left holding GPU memory for the next checkpoint.
- Before starting, it waits until every GPU has the memory vLLM will claim free again (a
  previous server's memory is released asynchronously after it exits).
- The server's output is copied to our stderr (the pod's log) and its last lines are kept:
  a server that dies while starting becomes one line naming its exit code and log tail.

The model is served under two names: the short one (MT-Bench writes files named after it)
and its path (lm-eval's local-completions client sends the tokenizer path as the model).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import httpx

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

Serve = Callable[[Path, str], AbstractContextManager[str]]

# `vllm serve`: vLLM 0.33 deprecates `-m vllm.entrypoints.openai.api_server`.
VLLM_SERVE = ("-m", "vllm.entrypoints.cli.main", "serve")
# vLLM lives in its own virtualenv in the eval image (it needs openai>=2, instructlab-eval
# needs openai<2); this variable names that venv's interpreter.
VLLM_PYTHON_ENV = "ILAB_VLLM_PYTHON"
# vLLM's default share of each GPU's memory (--gpu-memory-utilization).
GPU_MEMORY_UTILIZATION = 0.9
TAIL_LINES = 8
_MAX_LINE = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vllm_args(model: Path, name: str, *, port: int, gpus: int) -> list[str]:
    """vLLM API server arguments: loopback only, two served names, one shard per GPU."""
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model),
        "--served-model-name",
        name,
        str(model),
        "--tensor-parallel-size",
        str(max(gpus, 1)),
        "--gpu-memory-utilization",
        str(GPU_MEMORY_UTILIZATION),
    ]


class LogTail:
    """Copies a child's output to `sink` line by line and keeps the last lines."""

    def __init__(self, stream: IO[bytes], sink: IO[str], *, lines: int = TAIL_LINES) -> None:
        self._stream = stream
        self._sink = sink
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._pump, name="server-log", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with self._stream:
            for raw in iter(lambda: self._stream.readline(_MAX_LINE), b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with contextlib.suppress(ValueError, OSError):
                    self._sink.write(f"[server] {line}\n")
                # Python's traceback markers (`^^^^`, `~~~~`) say nothing in one line.
                if line.strip() and line.strip(" ^~"):
                    self._lines.append(line)

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)

    def summary(self) -> str:
        """The kept lines as one line (control characters dropped), for an error message."""
        cleaned = ("".join(c for c in line if c.isprintable()).strip() for line in self._lines)
        return " | ".join(line for line in cleaned if line) or "(no output)"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused pgid owned by someone else
        return False
    return True


def stop_group(process: subprocess.Popen[bytes], *, grace_s: float = 60.0) -> None:
    """SIGTERM the child's whole process group, SIGKILL what is left after `grace_s`."""
    pgid = process.pid  # start_new_session=True: the child leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, or the zombie keeps the group alive
        if process.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    log.warning("model server did not stop within %.0fs of SIGTERM: sending SIGKILL", grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float,
    *,
    poll_s: float = 2.0,
    tail: LogTail | None = None,
) -> None:
    """Poll `url/models` until it answers 200; fail at once when the server exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                if tail is not None:
                    tail.join()
                detail = f": {tail.summary()}" if tail is not None else ""
                raise StepError(
                    f"model server exited with code {process.returncode} while starting{detail}"
                )
            try:
                if client.get(f"{url}/models").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise StepError(f"model server at {url} not ready after {timeout_s:.0f}s")
            time.sleep(poll_s)


GpuMemory = Callable[[], list[tuple[int, int]]]


def nvidia_smi_memory() -> list[tuple[int, int]]:
    """(free MiB, total MiB) per GPU from nvidia-smi; empty when it is not available.

    NVML through nvidia-smi, not torch: a CUDA context in this process would itself hold
    memory on every GPU for as long as the step runs.
    """
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    query = [binary, "--query-gpu=memory.free,memory.total", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed (%s): not waiting for GPU memory", exc)
        return []
    memory: list[tuple[int, int]] = []
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        try:
            free, total = (int(part.strip()) for part in line.split(","))
        except ValueError:
            log.warning("unexpected nvidia-smi output %r: not waiting for GPU memory", line)
            return []
        memory.append((free, total))
    return memory


def gpu_count() -> int:
    """GPUs visible to this container, from nvidia-smi (the eval step's own torch is CPU-only)."""
    return len(nvidia_smi_memory())


def wait_for_gpu_memory(
    *,
    fraction: float = GPU_MEMORY_UTILIZATION,
    timeout_s: float = 300.0,
    poll_s: float = 2.0,
    probe: GpuMemory = nvidia_smi_memory,
) -> None:
    """Wait until every GPU has `fraction` of its memory free, as vLLM needs to start."""
    deadline = time.monotonic() + timeout_s
    while True:
        short = [
            (index, free, total)
            for index, (free, total) in enumerate(probe())
            if free < fraction * total
        ]
        if not short:
            return
        if time.monotonic() >= deadline:
            index, free, total = short[0]
            raise StepError(
                f"GPU {index} still has only {free} of {total} MiB free after {timeout_s:.0f}s "
                f"(the server needs {fraction:.0%}); another process holds GPU memory"
            )
        log.info(
            "waiting for GPU memory: %s",
            ", ".join(f"GPU {i}: {f}/{t} MiB free" for i, f, t in short),
        )
        time.sleep(poll_s)


@contextlib.contextmanager
def serve_process(
    command: Sequence[str],
    url: str,
    *,
    startup_timeout_s: float,
    poll_s: float = 2.0,
    grace_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    log_sink: IO[str] | None = None,
) -> Iterator[str]:
    """Run `command` in its own process group; yield `url` once `url/models` answers."""
    log.info("starting model server: %s", " ".join(command))
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ if env is None else env),
        start_new_session=True,
    )
    assert process.stdout is not None
    tail = LogTail(process.stdout, log_sink if log_sink is not None else sys.stderr)
    try:
        wait_ready(url, process, startup_timeout_s, poll_s=poll_s, tail=tail)
        yield url
    finally:
        stop_group(process, grace_s=grace_s)
        tail.join()


def vllm_python() -> str:
    """The interpreter that has vLLM: `$ILAB_VLLM_PYTHON`, else this one if it has vLLM."""
    configured = os.environ.get(VLLM_PYTHON_ENV)
    if configured:
        if not os.access(configured, os.X_OK):
            raise StepError(f"{VLLM_PYTHON_ENV}={configured} is not an executable interpreter")
        return configured
    if importlib.util.find_spec("vllm") is None:
        raise StepError(
            f"vLLM is not installed in this image and {VLLM_PYTHON_ENV} is not set: "
            "cannot serve the model"
        )
    return sys.executable


@contextlib.contextmanager
def serve_vllm(
    model: Path,
    name: str,
    *,
    startup_timeout_s: float = 1200.0,
    gpus: int | None = None,
    launcher: Sequence[str] | None = None,
    gpu_memory: GpuMemory = nvidia_smi_memory,
    poll_s: float = 2.0,
    grace_s: float = 60.0,
) -> Iterator[str]:
    """vLLM's OpenAI API server for `model`; `launcher` replaces `python -m vllm... serve`."""
    if launcher is None:
        launcher = (vllm_python(), *VLLM_SERVE)
    shards = gpus if gpus is not None else len(gpu_memory())
    wait_for_gpu_memory(probe=gpu_memory, poll_s=poll_s)
    port = free_port()
    command = [*launcher, *vllm_args(model, name, port=port, gpus=shards)]
    with serve_process(
        command,
        f"http://127.0.0.1:{port}/v1",
        startup_timeout_s=startup_timeout_s,
        poll_s=poll_s,
        grace_s=grace_s,
    ) as url:
        yield url
