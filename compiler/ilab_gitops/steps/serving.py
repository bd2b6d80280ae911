"""Serve a model under evaluation with an OpenAI-compatible server inside the pod.

Production uses vLLM's API server as a child process (`python -m
vllm.entrypoints.openai.api_server`); vLLM is not a pinned dependency of this package, the
eval image brings it. Everything vLLM-specific is here, behind `Serve`: a callable that,
given a model folder and a short name, yields the server's `/v1` URL. Tests pass a local
HTTP server instead.

The model is served under two names: the short one (MT-Bench writes files named after it)
and its path (lm-eval's local-completions client sends the tokenizer path as the model).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

Serve = Callable[[Path, str], AbstractContextManager[str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StepError(f"model server exited with code {process.returncode} while starting")
        try:
            if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise StepError(f"model server at {url} not ready after {timeout_s:.0f}s")


def gpu_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except ImportError:  # pragma: no cover - torch is in every eval image
        return 0


@contextlib.contextmanager
def serve_vllm(model: Path, name: str, *, startup_timeout_s: float = 1200.0) -> Iterator[str]:
    if importlib.util.find_spec("vllm") is None:
        raise StepError("vLLM is not installed in this image: cannot serve the model")
    port = free_port()
    gpus = max(gpu_count(), 1)
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
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
        str(gpus),
    ]
    log.info("starting vLLM: %s", " ".join(command))
    process = subprocess.Popen(command, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, process, startup_timeout_s)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
