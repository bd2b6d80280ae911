"""Real git for tests: a fixed identity and clock, no user or system configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def isolated_env(home: Path) -> dict[str, str]:
    """The variables to set for git (and the CLI) so nothing outside the test leaks in."""
    return {**GIT_ENV, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def bare_remote(path: Path) -> git.Repo:
    return git.Repo.init(path, bare=True, initial_branch="main")


def new_clone(remote: Path, path: Path) -> git.Repo:
    """A working copy of `remote` (which may still be empty) with `origin` set up."""
    repo = git.Repo.init(path, initial_branch="main")
    repo.create_remote("origin", str(remote))
    return repo


def commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add("--all")
    repo.git.commit("--quiet", "--allow-empty", "-m", message)
    return repo.head.commit.hexsha


def push(repo: git.Repo, branch: str = "main") -> None:
    repo.git.push("--quiet", "origin", f"{branch}:{branch}")
    repo.git.fetch("--quiet", "origin")


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as CI and users run it."""
    return subprocess.run(
        [sys.executable, "-m", "ilab_gitops.cli", *args],
        cwd=cwd,
        env={**os.environ, **env, "GITHUB_ACTIONS": ""},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def run_git(cwd: Path, *args: str, timeout: int = 120) -> str:
    """`git args` in `cwd` with a throwaway identity; its stdout, stripped."""
    done = subprocess.run(
        ["git", *IDENTITY, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    return done.stdout.strip()


def needs(condition: bool, reason: str) -> None:
    """Skip without `condition`; under CI (CI set) fail instead: nothing skips silently."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required when CI is set)")
        pytest.skip(reason)
