"""The render-and-push step of ilab-render.yml, run as written against real git repos.

A bare remote stands in for GitHub and a clone for the job's checkout. A stand-in
`ilab-gitops` on PATH merges another commit into main (as a concurrent merge would) before
handing over to the real CLI, so the job's first push is rejected; the step must fetch the
new tip, render again and push, within its bounded number of tries.
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
from tests.unit.repo.gitutil import run_git as git

WORKFLOW = ROOT / ".github" / "workflows" / "ilab-render.yml"
CLI = Path(sys.executable).with_name("ilab-gitops")
MINIMAL = ROOT / "spec" / "examples" / "minimal.yaml"

# Merges one new run into the remote's main before each render (all of them with ALWAYS=1).
MOVER = """#!/bin/sh
set -e
n=$(find "$MOVE_STATE" -maxdepth 1 -name 'c*' | wc -l)
if [ "$n" = 0 ] || [ "$MOVE_ALWAYS" = 1 ]; then
  (
    git clone -q "$MOVE_REMOTE" "$MOVE_STATE/c$n"
    cd "$MOVE_STATE/c$n"
    sed "s/granite-minimal/granite-second$n/" "$MOVE_MINIMAL" > "runs/granite-second$n.yaml"
    git add runs
    git -c user.name=m -c user.email=m@example.com commit -q -m "merge $n"
    git push -q origin HEAD:main
  ) >/dev/null
fi
exec "$MOVE_CLI" "$@"
"""


def _step() -> dict[str, Any]:
    data: Any = parse_yaml(WORKFLOW.read_bytes(), WORKFLOW.name).data
    step = data["jobs"]["commit"]["steps"][-1]
    assert "authed push" in step["run"]
    return dict(step)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    subprocess.run([str(CLI), "init", str(seed)], check=True, capture_output=True, timeout=120)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "--all")
    git(seed, "commit", "-q", "-m", "init")
    # A merged spec whose manifests are not rendered yet: what the job is started for.
    (seed / "runs" / "granite-minimal.yaml").write_text(MINIMAL.read_text())
    git(seed, "add", "runs")
    git(seed, "commit", "-q", "-m", "add granite-minimal")
    git(seed, "push", "-q", str(remote), "HEAD:main")
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ilab-gitops").write_text(MOVER)
    (bin_dir / "ilab-gitops").chmod(0o755)
    state = tmp_path / "moves"
    state.mkdir()
    return {"remote": remote, "checkout": checkout, "bin": bin_dir, "state": state}


def run_step(world: dict[str, Path], *, always: bool) -> subprocess.CompletedProcess[str]:
    step = _step()
    env = {
        **{k: str(v) for k, v in step["env"].items() if not str(v).startswith("${{")},
        "PATH": f"{world['bin']}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(world["state"]),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PUSH_TOKEN": "ghs_not_a_real_token",
        "RETRY_SECONDS": "0",
        "GITHUB_SERVER_URL": "https://github.invalid",
        "GITHUB_REF": "refs/heads/main",
        "RUNS": "runs",
        "ENVIRONMENTS": "environments",
        "RENDERED": "rendered",
        "MOVE_STATE": str(world["state"]),
        "MOVE_REMOTE": str(world["remote"]),
        "MOVE_MINIMAL": str(MINIMAL),
        "MOVE_CLI": str(CLI),
        "MOVE_ALWAYS": "1" if always else "0",
    }
    assert env["TRIES"] == "5"
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=world["checkout"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_a_moved_main_is_fetched_rendered_again_and_pushed(world: dict[str, Path]) -> None:
    done = run_step(world, always=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::warning::push 1 of 5 rejected; rendering again on the new tip" in done.stdout
    remote = world["remote"]
    subjects = git(remote, "log", "--format=%s", "main").splitlines()
    merged = git(remote, "rev-parse", "main~1")
    assert subjects[:3] == [f"Render runs for {merged[:12]}", "merge 0", "add granite-minimal"]
    tree = git(remote, "ls-tree", "-r", "-d", "--name-only", "main", "rendered/")
    runs = {path.split("/")[2] for path in tree.splitlines() if path.count("/") == 2}
    assert {"granite-minimal", "granite-second0"} <= runs  # rendered/<environment>/<run>
    # The token never reached the repository's configuration.
    assert "ghs_" not in (world["checkout"] / ".git" / "config").read_text()


def test_gives_up_after_its_tries_when_main_keeps_moving(world: dict[str, Path]) -> None:
    done = run_step(world, always=True)
    assert done.returncode == 1
    assert done.stdout.count("::warning::push") == 5
    assert done.stdout.rstrip().endswith(
        "::error::refs/heads/main kept moving; gave up after 5 tries"
    )
    subjects = git(world["remote"], "log", "--format=%s", "main").splitlines()
    assert not any(s.startswith("Render runs") for s in subjects)
