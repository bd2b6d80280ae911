"""GitRunsRepo against real repositories: a bare remote and clones."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilab_gitops.results.git_store import GitRunsRepo
from ilab_gitops.results.ports import FileReader
from ilab_gitops.results.sync import RepoError
from tests.support.runs_repo import RunsRepoFixture, git, make_runs_repo

AUTHOR = ("Sync Bot", "bot@example.com")


@pytest.fixture
def runs(tmp_path: Path) -> RunsRepoFixture:
    return make_runs_repo(tmp_path, {"r1": "kind: PipelineRun\n"})


def test_commit_pushes_without_touching_the_work_tree(runs: RunsRepoFixture) -> None:
    (runs.work / "scratch.txt").write_text("uncommitted work\n")
    before = git(runs.work, "rev-parse", "HEAD")
    repo = GitRunsRepo(runs.work, author=AUTHOR)
    repo.refresh()
    sha = repo.commit(
        lambda read: {"results/r1.json": b"{}\n", "CHANGELOG.md": b"# c\n"}, "results: r1"
    )
    assert sha == runs.head()
    assert runs.show("results/r1.json") == "{}" and runs.show("runs/r1.yaml") is not None
    assert git(runs.remote, "log", "-1", "--format=%an <%ae>|%s") == (
        "Sync Bot <bot@example.com>|results: r1"
    )
    assert git(runs.work, "rev-parse", "HEAD") == before
    assert (runs.work / "scratch.txt").read_text() == "uncommitted work\n"
    assert not (runs.work / "results").exists()
    assert repo.read("results/r1.json") == b"{}\n"
    assert repo.list_dir("results") == ["r1.json"]


def test_an_unchanged_tree_makes_no_commit(runs: RunsRepoFixture) -> None:
    repo = GitRunsRepo(runs.work, author=AUTHOR)
    repo.refresh()
    head = runs.head()
    spec = (runs.work / "runs" / "r1.yaml").read_bytes()
    assert repo.commit(lambda read: {"runs/r1.yaml": spec}, "noop") is None
    assert runs.head() == head


def test_a_lost_push_race_is_redone_on_the_new_tip(runs: RunsRepoFixture, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(runs.remote), str(other))
    repo = GitRunsRepo(runs.work, author=AUTHOR)
    repo.refresh()
    seen: list[bytes | None] = []

    def update(read: FileReader) -> dict[str, bytes]:
        current = read("CHANGELOG.md")
        seen.append(current)
        if len(seen) == 1:  # someone else pushes between our read and our push
            (other / "CHANGELOG.md").write_text("theirs\n")
            git(other, "add", "CHANGELOG.md")
            git(other, "commit", "--quiet", "-m", "theirs")
            git(other, "push", "--quiet", "origin", "main")
        return {"CHANGELOG.md": (current or b"") + b"ours\n"}

    assert repo.commit(update, "ours") is not None
    assert seen == [None, b"theirs\n"]
    assert runs.show("CHANGELOG.md") == "theirs\nours"
    assert runs.log()[:2] == ["ours", "theirs"]


def test_errors_are_repo_errors(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="not inside a git repository"):
        GitRunsRepo(tmp_path)
    git(tmp_path, "init", "--quiet")
    with pytest.raises(RepoError, match="git fetch origin main"):
        GitRunsRepo(tmp_path).refresh()
