"""`ilab-gitops results sync` end to end, on local servers only.

GitHub: `tests.support.github_fake` (every request and response checked against GitHub's
OpenAPI description). Storage: moto's S3 server. Git: a bare remote and a clone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ilab_gitops.cli.typer_app import app
from ilab_gitops.results.comment import marker
from ilab_gitops.results.model import RunResults
from ilab_gitops.results.sync import canonical
from tests.support.github_fake import FakeComment, FakeGitHub, running_fake_github
from tests.support.github_openapi import github_openapi
from tests.support.results_data import make_results, qna_file, qna_path
from tests.support.runs_repo import RunsRepoFixture, git, make_runs_repo, run_spec
from tests.support.s3_server import S3Server, running_s3

TAXONOMY = "example-org/taxonomy"
RUNS_REPO = "example-org/runs"
PULLS = "/repos/{owner}/{repo}/pulls/{pull_number}"
FILES = "/repos/{owner}/{repo}/pulls/{pull_number}/files"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3() as server:
        yield server


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with running_fake_github(github_openapi()) as server:
        server.repo(RUNS_REPO)
        yield server


@dataclass
class World:
    fake: FakeGitHub
    s3: S3Server
    bucket: str
    repo: RunsRepoFixture
    tmp: Path

    def put(self, results: RunResults) -> None:
        key = f"ilab-runs/kind/ilab-dev/{results.run}/results.json"
        self.s3.client().put_object(Bucket=self.bucket, Key=key, Body=canonical(results))

    def put_report(self, run: str, files: dict[str, bytes]) -> None:
        """What the publish step uploads beside results.json: the report and its plots."""
        for name, data in files.items():
            key = f"ilab-runs/kind/ilab-dev/{run}/report/{name}"
            self.s3.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def env(self) -> dict[str, str | None]:
        return {
            **self.s3.env(self.bucket),
            "GITHUB_TOKEN": "runs-token",
            "ILAB_TAXONOMY_TOKEN": "taxonomy-token",
            "GITHUB_ACTIONS": None,
            "GITHUB_REPOSITORY": None,
            "ILAB_COMMENT_AUTHOR": None,
        }

    def cli(
        self, *args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        import os

        before = Path.cwd()
        os.chdir(cwd or self.repo.work)
        try:
            return CliRunner().invoke(app, list(args), env={**self.env(), **(env or {})})
        finally:
            os.chdir(before)

    def sync(
        self, *extra: str, cwd: Path | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        return self.cli(
            "results",
            "sync",
            "--runs-repo",
            RUNS_REPO,
            "--github-api-url",
            self.fake.url,
            "--no-throttle",
            "--http-retries",
            "0",
            "--format",
            "text",
            *extra,
            cwd=cwd,
            env=env,
        )

    def bodies(self, number: int) -> list[str]:
        return [c.body for c in self.fake.repo(TAXONOMY).comments_on(number)]


def make_world(fake: FakeGitHub, s3: S3Server, tmp: Path, runs: dict[str, list[int]]) -> World:
    repo = make_runs_repo(
        tmp, {name: run_spec(name, prs) for name, prs in runs.items()}, render=True
    )
    for number in sorted({n for prs in runs.values() for n in prs}):
        fake.add_pull(
            TAXONOMY, number, [qna_path(number), f"docs/pr{number}.md"], merged=True, state="closed"
        )
    return World(fake, s3, s3.new_bucket(), repo, tmp)


def assert_ok(result: Result, code: int = 0) -> None:
    assert result.exit_code == code, result.output


def test_whole_cycle_reports_once_then_writes_nothing(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2, 3]})
    first = world.sync()
    assert_ok(first)
    assert "results sync: 1 pending" in first.output
    assert fake.requests == []

    results = make_results("granite-a", [1, 2, 3])
    world.put(results)
    second = world.sync("--label", "model-build-complete")
    assert_ok(second)
    assert "granite-a: reported" in second.output
    for number in (1, 2, 3):
        (body,) = world.bodies(number)
        assert body.startswith(marker("granite-a") + "\n")
        assert qna_path(number) in body and "What is 1\\?" in body
        assert "https://huggingface.co/example-org/granite-7b-lab/tree/release-granite-a" in body
        assert fake.repo(TAXONOMY).pulls[number].labels == {"model-build-complete"}
    (release,) = fake.repo(RUNS_REPO).releases.values()
    assert (release.tag, release.name) == ("granite-a", "granite-a (2026-11-24)")
    assert "[#1](https://github.com/example-org/taxonomy/pull/1) Add skill 1 by @contributor1" in (
        release.body
    )
    assert world.repo.show("results/granite-a.json") == canonical(results).decode().rstrip("\n")
    changelog = world.repo.show("CHANGELOG.md") or ""
    assert changelog.count("<!-- ilab-gitops:changelog run=granite-a -->") == 1
    assert release.body.strip() in changelog
    assert world.repo.log()[0] == "results: granite-a"
    tokens = {(r.operation, r.token) for r in fake.requests}
    assert ("issues/create-comment", "taxonomy-token") in tokens
    assert ("repos/create-release", "runs-token") in tokens

    head, seen = world.repo.head(), len(fake.requests)
    third = world.sync("--label", "model-build-complete")
    assert_ok(third)
    assert "results sync: 1 up to date" in third.output
    assert fake.requests[seen:] == []
    assert world.repo.head() == head


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_report_and_plots_are_attached_to_the_release_and_linked(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    """The sync attaches the report files (through uploads.github.com's API) and the PR
    comment and release notes link them; a second sync after new results attaches nothing
    twice."""
    world = make_world(fake, s3, tmp_path, {"granite-r": [7]})
    world.put(make_results("granite-r", [7]))
    files = {"report.html": b"<!doctype html><title>granite-r</title>", "loss.png": PNG}
    world.put_report("granite-r", files)
    assert_ok(world.sync())
    (release,) = fake.repo(RUNS_REPO).releases.values()
    assert {n: (a.data, a.content_type) for n, a in release.assets.items()} == {
        "report.html": (files["report.html"], "text/html; charset=utf-8"),
        "loss.png": (PNG, "image/png"),
    }
    base = f"https://github.com/{RUNS_REPO}/releases/download/granite-r"
    line = f"- **Report:** [HTML report]({base}/report.html) · [loss curves]({base}/loss.png)"
    (body,) = world.bodies(7)
    assert line in body.splitlines()
    assert line in release.body.splitlines()
    uploads = len(fake.calls("repos/upload-release-asset"))
    assert uploads == 2
    shown = world.cli(  # the notes as the sync wrote them, from storage
        "changelog", "granite-r", "--runs-repo", RUNS_REPO, "--runs", "runs", "--offline"
    )
    assert_ok(shown)
    assert line in shown.stdout.splitlines()

    world.put(make_results("granite-r", [7], best=7.5))
    world.put_report("granite-r", {"mt-bench.png": PNG})
    assert_ok(world.sync())
    assert sorted(release.assets) == ["loss.png", "mt-bench.png", "report.html"]
    assert len(fake.calls("repos/upload-release-asset")) == uploads + 1


def test_a_report_file_over_the_size_limit_is_skipped_and_named(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An oversized report file is left out with a note naming it; the results commit."""
    from ilab_gitops.results import s3_store

    monkeypatch.setattr(s3_store, "MAX_RESULTS_BYTES", 4096)
    world = make_world(fake, s3, tmp_path, {"granite-r": [7]})
    world.put(make_results("granite-r", [7]))
    world.put_report("granite-r", {"report.html": b"<p>" * 2000, "loss.png": PNG})
    result = world.sync("--format", "json")
    assert_ok(result)
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "reported" and run["problems"] == []
    key = f"s3://{world.bucket}/ilab-runs/kind/ilab-dev/granite-r/report/report.html"
    assert run["notes"] == [
        f"report report.html skipped: {key} is 6000 bytes; at most 4096 are read"
    ]
    assert "results.json" not in " ".join(run["notes"])
    (release,) = fake.repo(RUNS_REPO).releases.values()
    assert sorted(release.assets) == ["loss.png"]
    assert "report.html" not in world.bodies(7)[0]
    assert world.repo.show("results/granite-r.json") is not None
    assert_ok(world.sync())  # up to date: the skipped file fails no later sync


def test_new_results_update_comments_and_release_in_place(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2]})
    world.put(make_results("granite-a", [1, 2], mt_branch=(5.0, 6.0)))
    assert_ok(world.sync())
    ids = sorted(fake.repo(TAXONOMY).comments)
    seen = len(fake.requests)

    world.put(make_results("granite-a", [1, 2], mt_branch=(5.0, 6.5)))
    result = world.sync()
    assert_ok(result)
    assert sorted(fake.repo(TAXONOMY).comments) == ids
    writes = [r.operation for r in fake.writes if fake.requests.index(r) >= seen]
    assert sorted(writes) == [
        "issues/update-comment",
        "issues/update-comment",
        "repos/update-release",
    ]
    assert all("6.50" in body for n in (1, 2) for body in world.bodies(n))
    changelog = world.repo.show("CHANGELOG.md") or ""
    assert changelog.count("run=granite-a -->") == 2  # one start and one end marker
    assert "6.50" in changelog


def test_closed_pr_is_commented_and_deleted_pr_is_skipped(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2, 3]})
    fake.repo(TAXONOMY).pulls[2].merged = False
    fake.repo(TAXONOMY).pulls[3].deleted = True
    world.put(make_results("granite-a", [1, 2, 3]))
    result = world.sync()
    assert_ok(result)
    assert "note: #3: pull request not found in example-org/taxonomy; skipped" in result.output
    assert len(world.bodies(1)) == len(world.bodies(2)) == 1
    assert world.bodies(3) == []
    (release,) = fake.repo(RUNS_REPO).releases.values()
    assert "Add skill 2 by @contributor2 (closed)" in release.body
    assert "[#3](https://github.com/example-org/taxonomy/pull/3) (no longer on GitHub)" in (
        release.body
    )
    assert world.repo.show("results/granite-a.json") is not None


def test_server_error_and_rate_limit_are_finished_by_the_next_sync(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2, 3], "granite-b": [4]})
    world.put(make_results("granite-a", [1, 2, 3], finished="2026-11-24T10:00:00Z"))
    world.put(make_results("granite-b", [4], finished="2026-11-24T11:00:00Z"))
    fake.fail(
        "GET", FILES, 503, message="Service Unavailable", when=lambda p: p["pull_number"] == "2"
    )
    fake.rate_limit("POST", COMMENTS, retry_after=30, when=lambda p: p["issue_number"] == "3")
    head = world.repo.head()

    first = world.sync()
    assert_ok(first, 1)
    assert "error: #2: reading the pull request: GitHub API 503: Service Unavailable" in (
        first.output
    )
    assert "granite-b: deferred" in first.output
    assert "GitHub rate limit reached (retry after 30 s)" in first.output
    assert len(world.bodies(1)) == 1
    assert world.bodies(2) == world.bodies(3) == world.bodies(4) == []
    assert fake.repo(RUNS_REPO).releases == {}
    assert world.repo.head() == head

    second = world.sync()
    assert_ok(second)
    assert "results sync: 2 reported" in second.output
    for number in (1, 2, 3, 4):
        assert len(world.bodies(number)) == 1
    assert sorted(r.tag for r in fake.repo(RUNS_REPO).releases.values()) == [
        "granite-a",
        "granite-b",
    ]
    changelog = world.repo.show("CHANGELOG.md") or ""
    assert changelog.index("run=granite-b -->") < changelog.index("run=granite-a -->")

    seen = len(fake.requests)
    assert_ok(world.sync())
    assert fake.requests[seen:] == []


def test_two_runs_with_the_same_pr_get_one_comment_each(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2], "granite-b": [2, 3]})
    world.put(
        make_results("granite-a", [1, 2], finished="2026-11-24T10:00:00Z", mt_branch=(5.0, 6.0))
    )
    world.put(
        make_results("granite-b", [2, 3], finished="2026-11-25T10:00:00Z", mt_branch=(5.0, 6.25))
    )
    assert_ok(world.sync())
    shared = world.bodies(2)
    assert sorted(b.splitlines()[0] for b in shared) == [marker("granite-a"), marker("granite-b")]
    releases = {r.tag: r for r in fake.repo(RUNS_REPO).releases.values()}
    assert "Previous release (`granite-a`)" in releases["granite-b"].body
    assert "| MT-Bench-Branch | 5.00 | 6.25 | +1.25 | 6.00 | +0.25 |" in (
        releases["granite-b"].body
    )
    assert "Previous release (none)" in releases["granite-a"].body


def test_long_results_are_truncated_below_githubs_limit(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    long = qna_file(qna_path(1), 2000, text="Explain topic {n} " + "in great detail " * 20)
    world.put(make_results("granite-a", [1], files=[long]))
    result = world.sync()
    assert_ok(result)
    (body,) = world.bodies(1)
    assert len(body) <= 65_536 and len(body.encode()) <= 60_000
    assert "Shortened to stay under GitHub's comment size limit" in body
    assert body.rstrip().endswith("</sub>")


def test_dry_run_reads_but_writes_nothing(fake: FakeGitHub, s3: S3Server, tmp_path: Path) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    head = world.repo.head()
    result = world.sync("--dry-run")
    assert_ok(result)
    assert "would comment on example-org/taxonomy#1" in result.output
    assert "would create release granite-a" in result.output
    assert fake.writes == []
    assert world.repo.head() == head


def test_changelog_command_prints_the_release_notes(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2]})
    world.put(make_results("granite-a", [1, 2]))
    assert_ok(world.sync())
    git(world.repo.work, "pull", "--quiet", "--ff-only", "origin", "main")
    shown = world.cli(
        "changelog", "granite-a", "--runs-repo", RUNS_REPO, "--github-api-url", fake.url
    )
    assert_ok(shown)
    (release,) = fake.repo(RUNS_REPO).releases.values()
    assert shown.stdout == f"# {release.name}\n\n{release.body}"


def test_changelog_command_reads_storage_before_the_sync(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    shown = world.cli(
        "changelog", "granite-a", "--runs-repo", RUNS_REPO, "--runs", "runs", "--offline"
    )
    assert_ok(shown)
    assert shown.stdout.startswith("# granite-a (2026-11-24)\n")
    assert "[#1](https://github.com/example-org/taxonomy/pull/1)\n" in shown.stdout
    assert fake.requests == []


def test_sync_report_as_json(fake: FakeGitHub, s3: S3Server, tmp_path: Path) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    result = world.sync("--format", "json")
    assert_ok(result)
    data = json.loads(result.stdout)
    assert (data["complete"], data["rateLimited"]) == (True, None)
    (run,) = data["runs"]
    assert (run["run"], run["problems"]) == ("granite-a", [])
    assert any("example-org/taxonomy#1" in action for action in run["actions"])
    assert "results sync:" not in result.stderr


def test_changelog_offline_needs_no_runs_repo(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    shown = world.cli(
        "changelog", "granite-a", "--runs", "runs", "--offline", env={"GITHUB_REPOSITORY": None}
    )
    assert_ok(shown)
    assert shown.stdout.startswith("# granite-a (2026-11-24)\n")
    assert "[#1](https://github.com/example-org/taxonomy/pull/1)\n" in shown.stdout
    assert "results/granite-a.json" in shown.stdout  # a path in the runs repo, not a URL
    assert "https://github.com//" not in shown.stdout
    assert fake.requests == []
    online = world.cli("changelog", "granite-a", "--runs", "runs", env={"GITHUB_REPOSITORY": None})
    assert online.exit_code == 2
    assert "set --runs-repo OWNER/NAME (or GITHUB_REPOSITORY), or pass --offline" in online.stderr


def test_concurrent_syncs_converge_without_duplicates(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2, 3]})
    world.put(make_results("granite-a", [1, 2, 3]))
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(world.repo.remote), str(other))
    outcomes: list[int] = []

    def run(where: Path) -> None:
        from ilab_gitops.results.git_store import GitRunsRepo
        from ilab_gitops.results.github_api import PyGithubClient
        from ilab_gitops.results.locations import Links, s3_settings
        from ilab_gitops.results.s3_store import S3ResultsStore
        from ilab_gitops.results.sync import Services, SyncOptions, Target, sync

        client = PyGithubClient("t", fake.url, retries=0, throttle=False)
        services = Services(
            S3ResultsStore(s3_settings(world.s3.env(world.bucket))),
            client,
            client,
            GitRunsRepo(where),
        )
        target = Target("granite-a", "ilab-runs/kind/ilab-dev/granite-a/results.json", TAXONOMY)
        report = sync([target], services, SyncOptions(Links("https://github.com", RUNS_REPO)))
        outcomes.append(int(report.complete))

    threads = [threading.Thread(target=run, args=(w,)) for w in (world.repo.work, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [1, 1]
    for number in (1, 2, 3):
        assert len(world.bodies(number)) == 1
    assert len(fake.repo(RUNS_REPO).releases) == 1
    assert (world.repo.show("CHANGELOG.md") or "").count("run=granite-a -->") == 2
    assert world.repo.log().count("results: granite-a") == 1


def test_in_process_retries_absorb_a_single_server_error(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    fake.fail("GET", FILES, 503, message="Service Unavailable")
    result = world.sync("--http-retries", "1")
    assert_ok(result)
    assert [r.status for r in fake.calls("pulls/list-files")] == [503, 200]
    assert len(world.bodies(1)) == 1


def test_a_marker_comment_by_someone_else_is_never_ours(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1, 2]})
    spoof = marker("granite-a") + "\nResults: the model is great, see https://evil.example"
    taxonomy = fake.repo(TAXONOMY)
    taxonomy.comments[1] = FakeComment(1, 1, spoof, "mallory")
    world.put(make_results("granite-a", [1, 2], mt_branch=(5.0, 6.0)))
    assert_ok(world.sync())
    assert [r.status for r in fake.calls("users/get-authenticated")] == [200]
    spoofed, ours = taxonomy.comments_on(1)
    assert (spoofed.author, spoofed.body) == ("mallory", spoof)
    assert ours.author == fake.login and ours.body.startswith(marker("granite-a") + "\n### ")

    world.put(make_results("granite-a", [1, 2], mt_branch=(5.0, 6.5)))
    seen = len(fake.requests)
    assert_ok(world.sync())
    updated = [r.path for r in fake.requests[seen:] if r.operation == "issues/update-comment"]
    assert sorted(updated) == sorted(
        f"/repos/{TAXONOMY}/issues/comments/{c.id}"
        for c in taxonomy.comments.values()
        if c.author == fake.login
    )
    assert taxonomy.comments[1].body == spoof
    assert all("6.50" in c.body for c in taxonomy.comments.values() if c.author == fake.login)


def test_a_github_app_token_needs_the_configured_login(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    fake.fail("GET", "/user", 403, message="Resource not accessible by integration")
    refused = world.sync()
    assert_ok(refused, 1)
    assert (
        "error: #1 comment: cannot tell which results comments are ours: GET /user failed "
        "(GitHub API 403: Resource not accessible by integration); set --comment-author"
    ) in refused.output
    assert world.bodies(1) == [] and world.repo.show("results/granite-a.json") is None

    fake.login = "ilab-app[bot]"
    assert_ok(world.sync("--comment-author", "ilab-app[bot]"))
    assert len(world.bodies(1)) == 1
    assert [r.status for r in fake.calls("users/get-authenticated")] == [403]


def test_under_actions_the_workflow_token_comments_as_github_actions_bot(
    fake: FakeGitHub, s3: S3Server, tmp_path: Path
) -> None:
    world = make_world(fake, s3, tmp_path, {"granite-a": [1]})
    world.put(make_results("granite-a", [1]))
    fake.login = "github-actions[bot]"
    taxonomy = fake.repo(TAXONOMY)
    taxonomy.comments[1] = FakeComment(1, 1, marker("granite-a") + "\nspoof", "mallory")
    actions = {"GITHUB_ACTIONS": "true", "ILAB_TAXONOMY_TOKEN": None}
    assert_ok(world.sync(env=actions))
    assert fake.calls("users/get-authenticated") == []  # GitHub would refuse this token
    assert [c.author for c in taxonomy.comments_on(1)] == ["mallory", "github-actions[bot]"]
    assert {r.token for r in fake.calls("issues/create-comment")} == {"runs-token"}
