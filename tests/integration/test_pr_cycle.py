"""A whole pull-request cycle on a runs repo, with real git and the CLI in subprocesses.

init -> push main -> a branch adds a run (new, 7 steps) -> merge -> a branch changes the
phase-2 learning rate (re-run from train-phase-2, naming the field) -> branches that rename or
delete the run (forbidden, exit 2) -> a retry bumps an attempt, merged -> lowering it again
(forbidden) -> a maintainer-approved removal, merged -> reusing the name (forbidden).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest

from ilab_gitops.manifests import STEP_IDS
from ilab_gitops.runsrepo.comment import MARKER
from tests.unit.repo.gitutil import bare_remote, commit_all, isolated_env, new_clone, push, run_cli

RUN = "runs/granite-a.yaml"
LR_OLD, LR_NEW = "learningRate: 6e-6", "learningRate: 1e-5"
SKILLS_ATTEMPT = "attempt: 0              # retry train-phase-2"


class Cycle:
    """A clone of the shared remote where each test step works on a branch, like a person."""

    def __init__(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.mkdir()
        self.env = isolated_env(home)
        self.remote = tmp_path / "remote.git"
        self.root = tmp_path / "work"

    def cli(self, *args: str) -> tuple[int, str, str]:
        done = run_cli(list(args), self.root, self.env)
        return done.returncode, done.stdout, done.stderr

    def diff_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        code, out, _ = self.cli("diff", "--base", "origin/main", "--output", "json", *args)
        return code, json.loads(out)

    @property
    def repo(self) -> git.Repo:
        return git.Repo(self.root)

    def branch(self, name: str) -> None:
        self.repo.git.checkout("--quiet", "-B", name, "origin/main")

    def edit(self, path: str, old: str, new: str) -> None:
        target = self.root / path
        text = target.read_text()
        assert old in text, old
        target.write_text(text.replace(old, new, 1))

    def merge(self, branch: str) -> None:
        """Merge like the PR button, then run what the render workflow does on main."""
        repo = self.repo
        repo.git.checkout("--quiet", "main")
        repo.git.merge("--quiet", "--no-ff", "-m", f"Merge {branch}", branch)
        code, _, err = self.cli("render", "runs", "--prune")
        assert code == 0, err
        commit_all(repo, "Render runs")
        push(repo)


@pytest.fixture
def cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cycle:
    cycle = Cycle(tmp_path)
    for key, value in cycle.env.items():
        monkeypatch.setenv(key, value)  # for the GitPython calls made in this process
    bare_remote(cycle.remote)
    repo = new_clone(cycle.remote, cycle.root)
    code, _, err = cycle.cli(
        "init",
        ".",
        "--engine",
        "argocd",
        "--engine",
        "flux",
        "--repo-url",
        cycle.remote.as_uri(),
        "--owners",
        "@example/platform",
    )
    assert code == 0, err
    code, _, err = cycle.cli("doctor")
    assert (code, err) == (0, "ilab-gitops doctor: .: 5 checks passed\n")
    commit_all(repo, "Scaffold the runs repo")
    push(repo)
    return cycle


def add_a_run(cycle: Cycle) -> str:
    """A branch adds a run: new, all seven steps will run. Merged. Returns the spec text."""
    cycle.branch("add-run")
    example = (cycle.root / "examples" / "example.yaml").read_text()
    spec = example.replace("name: granite-example", "name: granite-a")
    (cycle.root / RUN).write_text(spec)
    commit_all(cycle.repo, "Add granite-a")
    code, data = cycle.diff_json()
    assert code == 0
    runs = {r["run"]: r for r in data["runs"]}
    assert runs["granite-a"]["status"] == "new"
    assert [s["step"] for s in runs["granite-a"]["steps"]] == list(STEP_IDS)
    assert {s["action"] for s in runs["granite-a"]["steps"]} == {"run"}
    assert sorted(runs) == ["granite-a"]  # the scaffold's example is not a run
    code, comment, _ = cycle.cli("pr-comment", "--base", "origin/main")
    assert code == 0 and comment.startswith(MARKER + "\n")
    assert "| `granite-a` | new | `prepare` ... `publish` (7) |" in comment
    cycle.merge("add-run")
    assert (cycle.root / "rendered" / "kind-dev" / "granite-a" / "flux").is_dir()
    return spec


def tune_phase_two(cycle: Cycle) -> None:
    """A branch changes the phase-2 learning rate: train-phase-2 and later re-run."""
    cycle.branch("tune")
    cycle.edit(RUN, LR_OLD, LR_NEW)
    commit_all(cycle.repo, "Tune phase 2")
    code, text, err = cycle.cli("diff", "--base", "origin/main")
    assert (code, err) == (0, "")
    line = (cycle.root / RUN).read_text().splitlines().index(f"      {LR_NEW}") + 1
    assert (
        f"{RUN}: re-runs from train-phase-2: train-phase-2, eval-mt-bench, eval-final, "
        "upload, publish; untouched: prepare, train-phase-1"
    ) in text
    assert f"{RUN}:{line}:21: spec.training.skills.learningRate: 6e-06 -> 1e-05" in text
    code, comment, _ = cycle.cli("pr-comment", "--base", "origin/main")
    assert "re-run from `train-phase-2`" in comment
    assert "`spec.training.skills.learningRate`: `6e-06` -> `1e-05`" in comment


def rename_and_delete(cycle: Cycle) -> None:
    """Renaming or deleting a run that is on main is forbidden (exit 2, located)."""
    cycle.branch("rename")
    cycle.edit(RUN, "name: granite-a", "name: granite-b")
    commit_all(cycle.repo, "Rename")
    code, _, err = cycle.cli("diff", "--base", "origin/main")
    assert code == 2
    name_line = (cycle.root / RUN).read_text().splitlines().index("  name: granite-b") + 1
    assert f"{RUN}:{name_line}:9: error[run-renamed] metadata.name: " in err
    code, comment, _ = cycle.cli("pr-comment", "--base", "origin/main")
    assert code == 0 and "#### Forbidden changes (1)" in comment

    cycle.branch("delete")
    cycle.repo.git.rm("--quiet", RUN)
    commit_all(cycle.repo, "Delete")
    code, _, err = cycle.cli("diff", "--base", "origin/main", "--format", "github")
    assert code == 2 and f"::error file={RUN},line={name_line},col=9,title=run-deleted" in err


def retry_then_lower(cycle: Cycle) -> None:
    """A retry bumps an attempt (merged); lowering it again is forbidden."""
    cycle.branch("retry")
    cycle.edit(RUN, SKILLS_ATTEMPT, "attempt: 1")
    commit_all(cycle.repo, "Retry train-phase-2")
    code, data = cycle.diff_json()
    [run] = [r for r in data["runs"] if r["run"] == "granite-a"]
    assert (code, run["status"], run["firstRerunStep"]) == (0, "rerun", "train-phase-2")
    cycle.merge("retry")

    cycle.branch("lower")
    cycle.edit(RUN, "attempt: 1", "attempt: 0")
    commit_all(cycle.repo, "Lower the attempt")
    code, data = cycle.diff_json()
    assert code == 2
    assert [(d["code"], d["field"]) for d in data["forbidden"]] == [
        ("attempt-decreased", "spec.training.skills.attempt")
    ]


def retire_then_reuse(cycle: Cycle, first_spec: str) -> None:
    """A maintainer-approved removal is merged; the name cannot return with another spec."""
    cycle.branch("retire")
    cycle.repo.git.rm("--quiet", RUN)
    commit_all(cycle.repo, "Retire granite-a")
    code, data = cycle.diff_json("--allow-removals")
    assert code == 0
    assert [r["status"] for r in data["runs"] if r["run"] == "granite-a"] == ["removed"]
    cycle.merge("retire")
    assert not (cycle.root / "rendered" / "kind-dev" / "granite-a").exists()

    cycle.branch("reuse")  # the first spec: the deleted one had its phase-2 attempt bumped
    (cycle.root / "runs" / "again.yaml").write_text(first_spec)
    commit_all(cycle.repo, "Reuse the name")
    code, data = cycle.diff_json()
    assert code == 2 and [d["code"] for d in data["forbidden"]] == ["name-reused"]


def edit_an_environment(cycle: Cycle) -> None:
    """A branch moves the profile's runs to kube-system (refused), then to another namespace:
    not a run change, not forbidden, but flagged for the platform owners."""
    cycle.branch("env")
    env = "environments/kind-dev.yaml"
    cycle.edit(env, "namespace: ilab-dev", "namespace: kube-system")
    commit_all(cycle.repo, "Move to kube-system")
    code, _, err = cycle.cli("diff", "--base", "origin/main")
    assert code == 2 and "error[system-namespace] spec.namespace" in err
    cycle.edit(env, "namespace: kube-system", "namespace: ilab-team")
    commit_all(cycle.repo, "Move to ilab-team")
    code, data = cycle.diff_json()
    assert (code, data["needsOwnerApproval"]) == (0, True)
    [change] = data["environments"]
    assert (change["environment"], change["change"], change["areas"]) == (
        "kind-dev",
        "changed",
        ["namespace"],
    )
    assert change["runs"] == ["granite-a"]
    code, comment, _ = cycle.cli("pr-comment", "--base", "origin/main")
    assert code == 0 and "#### Environment changes (1): platform owners' approval needed" in comment


def test_pr_cycle(cycle: Cycle) -> None:
    first_spec = add_a_run(cycle)
    edit_an_environment(cycle)
    tune_phase_two(cycle)
    rename_and_delete(cycle)
    retry_then_lower(cycle)
    retire_then_reuse(cycle, first_spec)
