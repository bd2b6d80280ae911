"""serving.py against a real child process that serves the tiny model over the OpenAI API.

The launcher is tests/steps/model_server.py, which takes vLLM's API-server arguments: the
command line, the process group, readiness, the log tail and shutdown are the production
code paths; only `-m vllm.entrypoints.cli.main serve` is replaced.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ilab_gitops.steps import serving
from ilab_gitops.steps.runtime import StepError

SERVER = Path(__file__).with_name("model_server.py")
NO_GPUS: serving.GpuMemory = list


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that nobody reaps (its parent was killed) counts as gone.
    status = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return status[0] != "Z"


@pytest.fixture
def child_pidfile(tmp_path: Path) -> Iterator[Path]:
    pidfile = tmp_path / "child.pid"
    yield pidfile
    if pidfile.exists():  # never leave a sleeper behind, whatever the test did
        pid = int(pidfile.read_text(encoding="ascii"))
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_serves_the_model_and_stops_the_whole_process_group(
    tiny_model: Path, child_pidfile: Path
) -> None:
    launcher = [sys.executable, str(SERVER), "--child-pidfile", str(child_pidfile)]
    with serving.serve_vllm(
        tiny_model, "tiny", gpus=2, launcher=launcher, gpu_memory=NO_GPUS, poll_s=0.2
    ) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with httpx.Client(timeout=60, trust_env=False) as client:
            models = client.get(f"{url}/models").json()
            assert [m["id"] for m in models["data"]] == ["tiny", str(tiny_model)]
            args = client.get(url.removesuffix("/v1") + "/debug/args").json()
            assert args["tensor_parallel_size"] == "2"
            assert args["host"] == "127.0.0.1"
            assert args["gpu_memory_utilization"] == "0.9"
            chat = client.post(
                f"{url}/chat/completions",
                json={
                    "model": "tiny",
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_tokens": 4,
                },
            ).json()
            assert chat["choices"][0]["message"]["role"] == "assistant"
            assert 1 <= chat["usage"]["completion_tokens"] <= 4
            completion = client.post(
                f"{url}/completions",
                json={"model": str(tiny_model), "prompt": "The quick brown", "max_tokens": 3},
            ).json()
            assert isinstance(completion["choices"][0]["text"], str)
            assert 1 <= completion["usage"]["completion_tokens"] <= 3
        child = int(child_pidfile.read_text(encoding="ascii"))
        assert pid_alive(child)
        assert os.getpgid(child) != os.getpgid(0)  # the server's own group, not ours
    assert not pid_alive(child), "the server's child outlived the shutdown"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=5)


def test_sigkill_when_the_server_ignores_sigterm(tiny_model: Path, child_pidfile: Path) -> None:
    launcher = [
        sys.executable,
        str(SERVER),
        "--ignore-sigterm",
        "--child-pidfile",
        str(child_pidfile),
    ]
    sink = io.StringIO()
    port = serving.free_port()
    command = [
        *launcher,
        *serving.vllm_args(tiny_model, "tiny", port=port, gpus=1),
    ]
    with serving.serve_process(
        command,
        f"http://127.0.0.1:{port}/v1",
        startup_timeout_s=300,
        poll_s=0.2,
        grace_s=1,
        log_sink=sink,
    ):
        child = int(child_pidfile.read_text(encoding="ascii"))
    assert not pid_alive(child)
    # The server's own output went to the sink, prefixed.
    assert f"[server] serving ['tiny', '{tiny_model}'] on 127.0.0.1:{port}" in sink.getvalue()


def test_a_crash_while_starting_is_one_line_with_the_log_tail(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with (
        pytest.raises(StepError) as caught,
        serving.serve_vllm(
            missing, "m", launcher=[sys.executable, str(SERVER)], gpu_memory=NO_GPUS, poll_s=0.2
        ),
    ):
        pytest.fail("the server cannot have become ready")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("model server exited with code 1 while starting: ")
    lines = message.removeprefix("model server exited with code 1 while starting: ").split(" | ")
    assert len(lines) == serving.TAIL_LINES  # the server's last lines...
    assert lines[-1].startswith("OSError: ")  # ...ending with its exception
    assert str(missing) in lines[-1]
    assert not [line for line in lines if not line.strip(" ^~")]  # no traceback markers


def test_a_server_that_never_gets_ready_is_stopped(tiny_model: Path, child_pidfile: Path) -> None:
    launcher = [sys.executable, str(SERVER), "--never-ready", "--child-pidfile", str(child_pidfile)]
    with (
        pytest.raises(StepError, match=r"^model server at http://127\.0\.0\.1:\d+/v1 not ready"),
        serving.serve_vllm(
            tiny_model,
            "tiny",
            launcher=launcher,
            gpu_memory=NO_GPUS,
            startup_timeout_s=0,
            poll_s=0.2,
        ),
    ):
        pytest.fail("the server cannot have become ready")
    # With no time to get ready it may be stopped before it forks its child at all.
    if child_pidfile.exists() and child_pidfile.read_text(encoding="ascii"):
        assert not pid_alive(int(child_pidfile.read_text(encoding="ascii")))


def test_missing_vllm_is_a_clear_error(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this interpreter")
    monkeypatch.delenv(serving.VLLM_PYTHON_ENV, raising=False)
    with (
        pytest.raises(
            StepError, match=r"^vLLM is not installed in this image and ILAB_VLLM_PYTHON"
        ),
        serving.serve_vllm(tiny_model, "tiny"),
    ):
        pytest.fail("nothing to serve with")


def test_vllm_python_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(serving.VLLM_PYTHON_ENV, str(tmp_path / "vllm" / "bin" / "python"))
    with pytest.raises(StepError, match=r"is not an executable interpreter$"):
        serving.vllm_python()
    monkeypatch.setenv(serving.VLLM_PYTHON_ENV, sys.executable)
    assert serving.vllm_python() == sys.executable


def test_gpu_count_comes_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fake_nvidia_smi(tmp_path / "bin", ["81000, 81559\n81000, 81559\n81000, 81559\n"])
    monkeypatch.setenv("PATH", str(folder))
    assert serving.gpu_count() == 3
    monkeypatch.setenv("PATH", str(tmp_path))
    assert serving.gpu_count() == 0


def fake_nvidia_smi(folder: Path, replies: list[str]) -> Path:
    """An `nvidia-smi` on PATH that prints `replies` in turn, one per call (then the last)."""
    folder.mkdir()
    for index, reply in enumerate(replies):
        (folder / f"reply-{index}").write_text(reply, encoding="ascii")
    script = folder / "nvidia-smi"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import pathlib, sys
            assert sys.argv[1:] == [
                "--query-gpu=memory.free,memory.total", "--format=csv,noheader,nounits"
            ], sys.argv
            folder = pathlib.Path({str(folder)!r})
            count = folder / "calls"
            calls = int(count.read_text()) if count.exists() else 0
            count.write_text(str(calls + 1))
            print((folder / f"reply-{{min(calls, {len(replies) - 1})}}").read_text(), end="")
            """
        ),
        encoding="ascii",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_waits_until_every_gpu_has_its_memory_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake_nvidia_smi(
        tmp_path / "bin",
        [
            "81000, 81559\n2000, 81559\n",  # GPU 1 still held by the previous server
            "81000, 81559\n60000, 81559\n",
            "81000, 81559\n80000, 81559\n",
        ],
    )
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    serving.wait_for_gpu_memory(timeout_s=300, poll_s=0)
    assert (folder / "calls").read_text() == "3"


def test_gpu_memory_that_never_comes_back_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake_nvidia_smi(tmp_path / "bin", ["81000, 81559\n2000, 81559\n"])
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(StepError) as caught:
        serving.wait_for_gpu_memory(timeout_s=0, poll_s=0)
    assert str(caught.value) == (
        "GPU 1 still has only 2000 of 81559 MiB free after 0s (the server needs 90%); "
        "another process holds GPU memory"
    )


def test_no_nvidia_smi_means_no_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert serving.nvidia_smi_memory() == []
    serving.wait_for_gpu_memory(timeout_s=0, poll_s=0)


def test_a_failing_nvidia_smi_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n", encoding="ascii")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    assert serving.nvidia_smi_memory() == []


# vLLM's own parser, run in the interpreter that has vLLM: $ILAB_VLLM_PYTHON (the eval image
# sets it to /opt/vllm/bin/python), or this one when vLLM is installed here.
PARSE_WITH_VLLM = """
import json, sys
from vllm.entrypoints.common.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
args = make_arg_parser(FlexibleArgumentParser()).parse_args(sys.argv[1:])
validate_parsed_serve_args(args)
keys = ("host", "port", "model", "served_model_name", "tensor_parallel_size",
        "gpu_memory_utilization")
print(json.dumps({key: getattr(args, key) for key in keys}))
"""


def vllm_interpreter() -> str:
    configured = os.environ.get(serving.VLLM_PYTHON_ENV)
    if configured:
        return configured
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    pytest.skip(
        "vLLM is not installed in this venv and ILAB_VLLM_PYTHON is not set: set it to a "
        "python with vllm==0.33.0 (the eval image's /opt/vllm/bin/python)"
    )


def test_the_command_line_parses_with_vllms_own_parser(tmp_path: Path) -> None:
    model = tmp_path / "checkpoints" / "samples_128"
    args = serving.vllm_args(model, "samples_128", port=8123, gpus=4)
    # Without a GPU vLLM cannot infer its device while building the parser's defaults.
    cpu = {"VLLM_TARGET_DEVICE": "cpu"} if serving.gpu_count() == 0 else {}
    result = subprocess.run(
        [vllm_interpreter(), "-c", PARSE_WITH_VLLM, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "VLLM_NO_USAGE_STATS": "1", "VLLM_LOGGING_LEVEL": "ERROR", **cpu},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "host": "127.0.0.1",
        "port": 8123,
        "model": str(model),
        "served_model_name": ["samples_128", str(model)],
        "tensor_parallel_size": 4,
        "gpu_memory_utilization": 0.9,
    }
