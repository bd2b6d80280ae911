"""Reading specs at a ref and deleted runs from history, against a real repository."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from ilab_gitops.runsrepo.gitsource import (
    GitSourceError,
    deleted_files,
    open_repo,
    resolve,
    tree_files,
)
from tests.unit.repo.gitutil import commit_all
from tests.unit.repo.specs import example_run


@pytest.fixture
def repo(tmp_path: Path, git_env: dict[str, str]) -> git.Repo:
    repo = git.Repo.init(tmp_path / "runs-repo", initial_branch="main")
    root = Path(repo.working_tree_dir or "")
    (root / "runs" / "team").mkdir(parents=True)
    (root / "runs" / "a.yaml").write_text(example_run())
    (root / "runs" / "team" / "b.yml").write_text(example_run("granite-b"))
    (root / "runs" / "notes.txt").write_text("not a spec")
    (root / "runs" / "link.yaml").symlink_to("a.yaml")
    commit_all(repo, "two runs")
    return repo


def test_tree_files_reads_yaml_under_each_prefix(repo: git.Repo) -> None:
    files = tree_files(repo.head.commit, ["runs", "missing-folder"])
    assert [path for path, _ in files] == ["runs/a.yaml", "runs/team/b.yml"]
    assert files[0][1] == example_run().encode()


def test_tree_files_accepts_a_single_file(repo: git.Repo) -> None:
    assert [p for p, _ in tree_files(repo.head.commit, ["runs/team/b.yml"])] == ["runs/team/b.yml"]


def test_deleted_files_returns_content_before_deletion(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    (root / "runs" / "a.yaml").unlink()
    (root / "runs" / "notes.txt").unlink()
    sha = commit_all(repo, "retire a")
    (root / "elsewhere.yaml").write_text("kind: Other\n")
    commit_all(repo, "unrelated")
    (root / "elsewhere.yaml").unlink()
    commit_all(repo, "outside the runs folder")
    assert deleted_files(repo, repo.head.commit, ["runs"]) == [
        (sha, "runs/a.yaml", example_run().encode())
    ]


def test_a_moved_file_counts_as_deleted_at_its_old_path(repo: git.Repo) -> None:
    repo.git.mv("runs/a.yaml", "runs/team/a.yaml")
    sha = commit_all(repo, "move")
    assert [(c, p) for c, p, _ in deleted_files(repo, repo.head.commit, ["runs"])] == [
        (sha, "runs/a.yaml")
    ]


def test_unknown_ref_and_non_repo_are_clear_errors(repo: git.Repo, tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match='unknown git ref "origin/nope"'):
        resolve(repo, "origin/nope")
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(GitSourceError, match="not inside a git repository"):
        open_repo(outside)
