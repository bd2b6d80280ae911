"""Run the real command-line entry point in-process (fast) and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_main(args: list[str], cwd: Path) -> CliResult:
    """`ilab-gitops <args>` in `cwd` through `ilab_gitops.cli.typer_app.main`, as the script."""
    from ilab_gitops.cli import typer_app as cli

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    sys.argv = ["ilab-gitops", *args]
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_process(args: list[str], cwd: Path, timeout: float = 60) -> CliResult:
    """`ilab-gitops <args>` in a fresh interpreter: survives what would kill this one."""
    script = Path(sys.executable).with_name("ilab-gitops")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "ilab_gitops.cli"]
    environ = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "CI"}}
    done = subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
