"""The reusable workflows' install step, run as written: fetch the pinned commit, install
hash-checked, then run the tool inside a hostile checkout that tries to take over Python.

GitHub is a bare clone of this project reached over file://; pip runs offline from the
wheels of the lock file (`make pytest` downloads them into .venv/wheelhouse).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.load.sources import parse_yaml
from tests.conftest import ROOT
from tests.unit.repo.gitutil import needs as _needs
from tests.unit.repo.gitutil import run_git as git

WORKFLOW = ROOT / ".github" / "workflows" / "ilab-validate.yml"
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
CLI = Path(sys.executable).with_name("ilab-gitops")

# Planted by the "pull request": each one records that it ran.
HOSTILE = {
    "ilab_gitops/__init__.py": "open('PWNED-ilab_gitops', 'w').close()\n",
    "pip/__init__.py": "",
    "pip/__main__.py": "open('PWNED-pip', 'w').close()\n",
    "sitecustomize.py": "open('PWNED-sitecustomize', 'w').close()\n",
    "usercustomize.py": "open('PWNED-usercustomize', 'w').close()\n",
    "yaml.py": "open('PWNED-yaml', 'w').close()\n",
}


def _install_step() -> dict[str, Any]:
    data: Any = parse_yaml(WORKFLOW.read_bytes(), WORKFLOW.name).data
    [step] = [s for s in data["jobs"]["validate"]["steps"] if "install.sh" in s.get("run", "")]
    return dict(step)


@pytest.mark.slow
def test_pinned_install_then_a_hostile_checkout_cannot_take_over(tmp_path: Path) -> None:
    _needs((WHEELHOUSE / ".done").is_file(), "run `make pytest` (it downloads the wheelhouse)")
    _needs((ROOT / ".git").exists(), "not a git checkout")
    head = git(ROOT, "rev-parse", "HEAD")
    _needs(
        git(ROOT, "cat-file", "-t", f"{head}:.github/install/install.sh") == "blob",
        ".github/install/ is not committed yet",
    )
    server = tmp_path / "server"
    git(
        tmp_path,
        "clone",
        "-q",
        "--bare",
        "--depth",
        "1",
        f"file://{ROOT}",
        str(server / "acme" / "ilab-gitops"),
    )
    runner = tmp_path / "runner"
    runner.mkdir()
    github_path = tmp_path / "github-path"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "RUNNER_TEMP": str(runner),
        "GITHUB_PATH": str(github_path),
        "GITHUB_SERVER_URL": f"file://{server}",
        "ILAB_REPOSITORY": "acme/ilab-gitops",
        "ILAB_REF": head,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }
    step = _install_step()
    assert step["working-directory"] == "${{ runner.temp }}"
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=runner,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bin_dir = runner / "ilab-gitops" / "bin"
    assert github_path.read_text() == f"{bin_dir}\n"
    assert git(runner / "ilab-gitops-src", "rev-parse", "HEAD") == head

    # The "pull request": a valid runs repo plus modules that would run if Python read cwd.
    pr = tmp_path / "pr"
    subprocess.run([str(CLI), "init", str(pr)], check=True, capture_output=True, timeout=120)
    for name, text in HOSTILE.items():
        (pr / name).parent.mkdir(parents=True, exist_ok=True)
        (pr / name).write_text(text)
    hostile_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": ".",  # a job cannot get this from a PR; -I ignores it anyway
        "PYTHONSTARTUP": "sitecustomize.py",
        "HOME": str(tmp_path / "home"),
    }
    ran = subprocess.run(
        ["ilab-gitops", "validate", "runs", "--environments", "environments"],
        cwd=pr,
        env=hostile_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "file(s) valid" in ran.stderr
    assert sorted(p.name for p in pr.glob("PWNED-*")) == []
    # The same checkout does take over a plain `python -m pip`: the guard above is real.
    plain = subprocess.run(
        [str(runner / "ilab-gitops" / "venv" / "bin" / "python"), "-m", "pip", "--version"],
        cwd=pr,
        env=hostile_env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert plain.returncode == 0
    assert (pr / "PWNED-pip").exists()
