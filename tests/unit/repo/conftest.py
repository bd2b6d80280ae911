"""Fixtures for the runs-repo tooling: isolated git, the in-process CLI, spec texts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ilab_gitops.cli import typer_app as cli
from tests.unit.repo.gitutil import isolated_env


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every git call in the test uses a fixed identity and no configuration but its own."""
    home = tmp_path / "home"
    home.mkdir()
    env = isolated_env(home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return env


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI in-process, through `main()`, so the exit-code mapping is exercised too."""

    def invoke(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["ilab-gitops", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            cli.main()
        captured = capsys.readouterr()
        code = done.value.code
        return Result(code if isinstance(code, int) else 0, captured.out, captured.err)

    return invoke
