"""The project's pre-commit hooks, run by the real `pre-commit` in a runs repo made by `init`.

pre-commit clones this project (a local clone at HEAD, file://) and installs it into its own
environment with pip, offline: dependencies come from the wheels of the lock file that
`make pytest` downloads into .venv/wheelhouse. Slow (an environment is built), so one test
walks the whole story: clean repo passes, an invalid spec and a stale rendered/ fail with
the tool's own messages, a fresh render passes again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.unit.repo.gitutil import needs as _needs
from tests.unit.repo.gitutil import run_git as git

HOOKS = ROOT / ".pre-commit-hooks.yaml"
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
CLI = Path(sys.executable).with_name("ilab-gitops")
IDS = ["ilab-gitops-validate", "ilab-gitops-render-check"]


def test_hooks_file_declares_both_hooks() -> None:
    data = yaml.safe_load(HOOKS.read_text())
    assert [hook["id"] for hook in data] == IDS
    for hook in data:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
    validate, render = data
    assert (validate["entry"], validate["args"]) == (
        "ilab-gitops validate",
        ["runs", "--environments", "environments"],
    )
    assert render["entry"] == "ilab-gitops render --check --prune"


@pytest.mark.slow
def test_hooks_run_through_pre_commit_in_a_scaffolded_repo(tmp_path: Path) -> None:
    _needs(
        shutil.which("pre-commit") is not None or (CLI.parent / "pre-commit").exists(),
        "pre-commit is not installed (dev extra)",
    )
    _needs((WHEELHOUSE / ".done").is_file(), "run `make pytest` (it downloads the wheelhouse)")
    _needs((ROOT / ".git").exists(), "not a git checkout")
    head = git(ROOT, "rev-parse", "HEAD")
    _needs(
        git(ROOT, "cat-file", "-t", f"{head}:.pre-commit-hooks.yaml") == "blob",
        ".pre-commit-hooks.yaml is not committed yet",
    )
    clone = tmp_path / "ilab-gitops"
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone))

    repo = tmp_path / "runs-repo"
    subprocess.run([str(CLI), "init", str(repo)], check=True, capture_output=True, timeout=120)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: file://{clone}\n    rev: {head}\n"
        f"    hooks:\n      - id: {IDS[0]}\n      - id: {IDS[1]}\n"
    )
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "init")

    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VIRTUALENV_NO_DOWNLOAD": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "NO_COLOR": "1",
    }
    pre_commit = shutil.which("pre-commit") or str(CLI.parent / "pre-commit")

    def hooks() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pre_commit, "run", "--all-files", "--color", "never"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    clean = hooks()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ilab-gitops validate" in clean.stdout and "Passed" in clean.stdout

    # A new run with a typo: the validate hook fails with the tool's own located message.
    minimal = (ROOT / "spec" / "examples" / "minimal.yaml").read_text()
    added = repo / "runs" / "granite-minimal.yaml"
    added.write_text(minimal.replace("spec:\n", "spec:\n  epochz: 3\n", 1))
    broken = hooks()
    assert broken.returncode == 1
    assert "runs/granite-minimal.yaml:" in broken.stdout
    assert 'error[unknown-field] spec.epochz: unknown field "epochz"' in broken.stdout

    # Fixed, but not rendered: the render check fails and names the run.
    added.write_text(minimal)
    stale = hooks()
    assert stale.returncode == 1
    assert "ilab-gitops render --check" in stale.stdout and "Failed" in stale.stdout
    assert "granite-minimal" in stale.stdout

    subprocess.run(
        [str(CLI), "render", "runs", "--environments", "environments", "--out", "rendered"],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=120,
    )
    fixed = hooks()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
