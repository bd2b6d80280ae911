"""The sync's decisions, with in-memory stand-ins for GitHub, storage and git."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from ilab_gitops.results.comment import marker
from ilab_gitops.results.locations import Links
from ilab_gitops.results.model import RunResults
from ilab_gitops.results.ports import (
    AlreadyExists,
    Comment,
    GitHubError,
    PullRequest,
    Release,
    TreeUpdate,
)
from ilab_gitops.results.sync import (
    RepoError,
    Services,
    StoreError,
    SyncOptions,
    Target,
    canonical,
    sync,
)
from tests.support.results_data import make_results, qna_path

REPO, RUNS = "org/taxonomy", "org/runs"
OPTIONS = SyncOptions(Links("https://github.com", RUNS))


@dataclass
class MemoryGitHub:
    comments: dict[int, list[Comment]] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)
    labels: dict[int, set[str]] = field(default_factory=dict)
    assets: dict[int, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    race_release: bool = False
    next_id: int = 100
    identity: str | None = "bot"  # None: GET /user is refused (a GitHub App token)
    logins: int = 0

    def login(self) -> str:
        self.logins += 1
        if self.identity is None:
            raise GitHubError("GitHub API 403: Resource not accessible by integration", 403)
        return self.identity

    def pull_request(self, repo: str, number: int) -> PullRequest:
        return PullRequest(
            repo,
            number,
            f"https://github.com/{repo}/pull/{number}",
            "merged",
            f"PR {number}",
            "alice",
            (qna_path(number),),
            frozenset(self.labels.get(number, set())),
        )

    def marker_comments(self, repo: str, number: int, marker: str) -> list[Comment]:
        return [c for c in self.comments.get(number, []) if c.body.startswith(marker)]

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        self.next_id += 1
        comment = Comment(self.next_id, body, "bot")
        self.comments.setdefault(number, []).append(comment)
        self.writes.append(f"create {number}")
        return comment

    def update_comment(self, repo: str, comment_id: int, body: str) -> None:
        for number, found in self.comments.items():
            self.comments[number] = [
                Comment(c.id, body, c.author) if c.id == comment_id else c for c in found
            ]
        self.writes.append(f"update {comment_id}")

    def delete_comment(self, repo: str, comment_id: int) -> None:
        for number, found in self.comments.items():
            self.comments[number] = [c for c in found if c.id != comment_id]
        self.writes.append(f"delete {comment_id}")

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None:
        self.labels.setdefault(number, set()).update(labels)
        self.writes.append(f"label {number}")

    def release(self, repo: str, tag: str) -> Release | None:
        return self.releases.get(tag)

    def create_release(self, repo: str, tag: str, name: str, body: str) -> Release:
        if self.race_release:  # another sync created it a moment ago
            self.race_release = False
            self.releases[tag] = Release(7, tag, name, "older body")
            raise AlreadyExists("GitHub API 422: Validation Failed", 422)
        self.releases[tag] = Release(len(self.releases) + 1, tag, name, body)
        self.writes.append(f"create release {tag}")
        return self.releases[tag]

    def update_release(self, repo: str, release_id: int, name: str, body: str) -> None:
        for tag, found in self.releases.items():
            if found.id == release_id:
                self.releases[tag] = Release(release_id, tag, name, body)
        self.writes.append(f"update release {release_id}")

    def release_assets(self, repo: str, release_id: int) -> list[str]:
        return sorted(self.assets.get(release_id, {}))

    def upload_release_asset(
        self, repo: str, release_id: int, name: str, data: bytes, content_type: str
    ) -> None:
        attached = self.assets.setdefault(release_id, {})
        if name in attached:
            raise AlreadyExists("GitHub API 422: Validation Failed", 422)
        attached[name] = (data, content_type)
        self.writes.append(f"attach {name}")


@dataclass
class MemoryStore:
    objects: dict[str, bytes] = field(default_factory=dict)
    broken: bool = False

    def get(self, key: str) -> bytes | None:
        if self.broken:
            raise StoreError("AccessDenied: read-only key lacks s3:GetObject")
        return self.objects.get(key)

    def uri(self, key: str) -> str:
        return f"s3://bucket/{key}"


@dataclass
class MemoryRepo:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0
    broken: bool = False

    def refresh(self) -> None:
        pass

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> list[str]:
        return sorted(p.removeprefix(path + "/") for p in self.files if p.startswith(path + "/"))

    def commit(self, update: TreeUpdate, message: str) -> str | None:
        if self.broken:
            raise RepoError("git push origin main: permission denied")
        files: Mapping[str, bytes] = update(self.files.get)
        if all(self.files.get(p) == data for p, data in files.items()):
            return None
        self.files.update(files)
        self.commits += 1
        return f"{self.commits:040x}"


def _key(run: str) -> str:
    return f"prefix/{run}/results.json"


def _world(*results: RunResults) -> tuple[MemoryGitHub, MemoryStore, MemoryRepo, Services]:
    github, store, repo = MemoryGitHub(), MemoryStore(), MemoryRepo()
    for r in results:
        store.objects[_key(r.run)] = canonical(r)
    return github, store, repo, Services(store, github, github, repo)


def _target(run: str, **kw: bool) -> Target:
    return Target(run, _key(run), REPO, **kw)


def test_reported_runs_are_skipped_without_any_github_call() -> None:
    results = make_results("r1", [1])
    github, _, repo, services = _world(results)
    assert sync([_target("r1")], services, OPTIONS).runs[0].status == "reported"
    assert github.writes == ["create 1", "create release r1"]
    github.writes.clear()

    class Untouchable(MemoryGitHub):
        def pull_request(self, repo: str, number: int) -> PullRequest:
            raise AssertionError("no GitHub call expected")

    quiet = Services(services.store, Untouchable(), Untouchable(), repo)
    report = sync([_target("r1")], quiet, OPTIONS)
    assert [r.status for r in report.runs] == ["up-to-date"] and report.complete


def test_duplicate_comments_from_a_concurrent_sync_are_removed() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    github.comments[1] = [
        Comment(5, marker("r1") + "\nold", "bot"),
        Comment(9, marker("r1") + "\nold too", "bot"),
        Comment(6, "unrelated", "carol"),
    ]
    report = sync([_target("r1")], services, OPTIONS)
    assert report.complete
    assert [c.id for c in github.comments[1]] == [5, 6]
    assert github.writes[:2] == ["delete 9", "update 5"]


def test_comment_author_filter_ignores_marked_comments_of_others() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    github.comments[1] = [Comment(5, marker("r1") + "\nspoof", "mallory")]
    options = SyncOptions(OPTIONS.links, comment_author="bot")
    assert sync([_target("r1")], services, options).complete
    assert next((c.id, c.author) for c in github.comments[1]) == (5, "mallory")
    assert github.writes[0] == "create 1"


def test_marked_comments_of_others_are_ignored_with_the_looked_up_login() -> None:
    github, _, _, services = _world(make_results("r1", [1, 2]))
    github.comments[1] = [Comment(5, marker("r1") + "\nspoof", "mallory")]
    github.comments[2] = [Comment(6, marker("r1") + "\nspoof", "mallory")]
    assert sync([_target("r1")], services, OPTIONS).complete
    assert github.logins == 1  # looked up once for the whole sync
    for number, spoof in ((1, 5), (2, 6)):
        first, ours = github.comments[number]
        assert (first.id, first.author, first.body) == (spoof, "mallory", marker("r1") + "\nspoof")
        assert ours.author == "bot" and ours.body.startswith(marker("r1") + "\n### ")
    assert github.writes[:2] == ["create 1", "create 2"]


def test_our_comment_is_updated_even_when_someone_else_marked_one_first() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    github.comments[1] = [
        Comment(5, marker("r1") + "\nspoof", "mallory"),
        Comment(9, marker("r1") + "\nold", "Bot"),  # logins compare case-insensitively
    ]
    assert sync([_target("r1")], services, OPTIONS).complete
    assert [w for w in github.writes if "release" not in w] == ["update 9"]
    assert github.comments[1][0].body == marker("r1") + "\nspoof"


def test_without_a_login_no_comment_is_touched_and_the_run_is_retried() -> None:
    github, _, repo, services = _world(make_results("r1", [1]))
    github.identity = None
    github.comments[1] = [Comment(5, marker("r1") + "\nspoof", "mallory")]
    report = sync([_target("r1")], services, OPTIONS)
    (entry,) = report.runs
    assert entry.status == "failed" and not report.complete
    assert entry.problems == [
        "#1 comment: cannot tell which results comments are ours: GET /user failed (GitHub API "
        "403: Resource not accessible by integration); set --comment-author "
        "(ILAB_COMMENT_AUTHOR) to the login that posts them, e.g. my-app[bot] for a GitHub App"
    ]
    assert [w for w in github.writes if "release" not in w] == [] and repo.commits == 0


def test_an_empty_configured_login_means_look_it_up() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    options = SyncOptions(OPTIONS.links, comment_author="")
    assert sync([_target("r1")], services, options).complete
    assert github.logins == 1 and github.comments[1][0].author == "bot"


def test_a_configured_login_is_used_without_a_lookup() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    github.identity = None
    options = SyncOptions(OPTIONS.links, comment_author="bot")
    assert sync([_target("r1")], services, options).complete
    assert github.logins == 0 and github.writes[0] == "create 1"


def test_a_release_created_concurrently_is_updated_not_duplicated() -> None:
    github, _, _, services = _world(make_results("r1", [1]))
    github.race_release = True
    assert sync([_target("r1")], services, OPTIONS).complete
    assert list(github.releases) == ["r1"] and github.releases["r1"].id == 7
    assert "update release 7" in github.writes


def test_labels_are_added_only_when_missing() -> None:
    github, _, _, services = _world(make_results("r1", [1, 2]))
    github.labels[1] = {"done"}
    options = SyncOptions(OPTIONS.links, labels=("done",))
    assert sync([_target("r1")], services, options).complete
    assert [w for w in github.writes if w.startswith("label")] == ["label 2"]


def test_flags_turn_comments_and_release_off_but_results_are_committed() -> None:
    github, _, repo, services = _world(make_results("r1", [1]))
    report = sync([_target("r1", comment=False, release=False)], services, OPTIONS)
    assert report.complete and github.writes == []
    assert sorted(repo.files) == ["results/r1.json"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{}", "s3://bucket/prefix/r1/results.json: 12 error(s), first at run: Field required"),
        (canonical(make_results("other")), "s3://bucket/prefix/r1/results.json is for run 'other'"),
    ],
)
def test_invalid_results_are_reported(raw: bytes, problem: str) -> None:
    _github, store, repo, services = _world()
    store.objects[_key("r1")] = raw
    report = sync([_target("r1")], services, OPTIONS)
    assert (report.runs[0].status, report.runs[0].problems) == ("invalid", [problem])
    assert not report.complete and repo.commits == 0


def test_store_and_push_failures_leave_the_run_for_the_next_sync() -> None:
    _github, store, repo, services = _world(make_results("r1", [1]))
    repo.broken = True
    report = sync([_target("r1")], services, OPTIONS)
    assert report.runs[0].status == "failed"
    assert report.runs[0].problems == [
        "committing results/r1.json: git push origin main: permission denied"
    ]
    store.broken = True
    report = sync([_target("r1")], services, OPTIONS)
    assert report.runs[0].problems == [
        "reading s3://bucket/prefix/r1/results.json: AccessDenied: read-only key lacks s3:GetObject"
    ]


def test_a_github_error_on_one_pr_does_not_stop_the_others() -> None:
    class Flaky(MemoryGitHub):
        def create_comment(self, repo: str, number: int, body: str) -> Comment:
            if number == 1:
                raise GitHubError("GitHub API 502: Bad Gateway", 502)
            return super().create_comment(repo, number, body)

    github = Flaky()
    store = MemoryStore({_key("r1"): canonical(make_results("r1", [1, 2]))})
    repo = MemoryRepo()
    report = sync([_target("r1")], Services(store, github, github, repo), OPTIONS)
    assert report.runs[0].problems == ["#1 comment: GitHub API 502: Bad Gateway"]
    assert "create 2" in github.writes and "create release r1" in github.writes
    assert repo.commits == 0


def test_dry_run_writes_nothing() -> None:
    github, _, repo, services = _world(make_results("r1", [1]))
    report = sync([_target("r1")], services, SyncOptions(OPTIONS.links, dry_run=True))
    assert github.writes == [] and repo.commits == 0
    assert report.runs[0].actions == [
        "would comment on org/taxonomy#1",
        "would create release r1",
        "would commit results/r1.json and CHANGELOG.md",
    ]


def _with_report(store: MemoryStore, run: str, names: Sequence[str]) -> None:
    for name in names:
        store.objects[f"prefix/{run}/report/{name}"] = f"{run} {name}".encode()


def test_report_files_are_attached_once_and_linked_in_order() -> None:
    github, store, _, services = _world(make_results("r1", [1]))
    _with_report(store, "r1", ["branch.png", "report.html"])
    github.releases["r1"] = Release(5, "r1", "old", "old body")
    github.assets[5] = {"branch.png": (b"attached by an earlier sync", "image/png")}
    report = sync([_target("r1")], services, OPTIONS)
    assert report.complete
    assert github.assets[5] == {
        "branch.png": (b"attached by an earlier sync", "image/png"),  # never replaced
        "report.html": (b"r1 report.html", "text/html; charset=utf-8"),
    }
    assert "attached report.html to release r1" in report.runs[0].actions
    base = "https://github.com/org/runs/releases/download/r1"
    line = (
        f"- **Report:** [HTML report]({base}/report.html) · "
        f"[candidate vs base per task]({base}/branch.png)"
    )
    assert line in github.comments[1][0].body.splitlines()
    assert line in github.releases["r1"].body.splitlines()


def test_without_a_release_the_report_is_neither_read_nor_linked() -> None:
    github, store, _, services = _world(make_results("r1", [1]))
    _with_report(store, "r1", ["report.html"])
    assert sync([_target("r1", release=False)], services, OPTIONS).complete
    assert "**Report:**" not in github.comments[1][0].body
    assert github.assets == {}


def test_dry_run_says_which_report_files_it_would_attach() -> None:
    github, store, repo, services = _world(make_results("r1", [1]))
    _with_report(store, "r1", ["report.html", "loss.png"])
    report = sync([_target("r1")], services, SyncOptions(OPTIONS.links, dry_run=True))
    assert github.writes == [] and repo.commits == 0
    actions = report.runs[0].actions
    assert actions[actions.index("would create release r1") + 1 :][:2] == [
        "would attach report.html to release r1",
        "would attach loss.png to release r1",
    ]


def test_an_unreadable_report_file_is_skipped_with_a_note() -> None:
    """A report file the sync cannot read (no permission under report/, over the size
    limit) is left out and noted; it never holds back the results."""

    class Flaky(MemoryStore):
        def get(self, key: str) -> bytes | None:
            if key.endswith("/loss.png"):
                raise StoreError("AccessDenied", lasting=True)
            return super().get(key)

    store = Flaky({_key("r1"): canonical(make_results("r1", [1]))})
    _with_report(store, "r1", ["report.html", "loss.png"])
    github, repo = MemoryGitHub(), MemoryRepo()
    report = sync([_target("r1")], Services(store, github, github, repo), OPTIONS)
    (entry,) = report.runs
    assert report.complete and entry.status == "reported" and entry.problems == []
    assert "report loss.png skipped: AccessDenied" in entry.notes
    assert repo.commits == 1 and "results/r1.json" in repo.files
    assert github.assets == {1: {"report.html": (b"r1 report.html", "text/html; charset=utf-8")}}
    assert "loss.png" not in github.comments[1][0].body
    assert "loss.png" not in github.releases["r1"].body
    # The next sync finds the run up to date: nothing is retried, nothing fails.
    again = sync([_target("r1")], Services(store, github, github, repo), OPTIONS)
    assert [r.status for r in again.runs] == ["up-to-date"]


def test_a_passing_report_read_error_postpones_the_run_to_the_next_sync() -> None:
    """A network error on a report file is not a reason to publish without it: the run
    waits, and the next sync attaches the whole report."""
    failing = {"now": True}

    class Blip(MemoryStore):
        def get(self, key: str) -> bytes | None:
            if key.endswith("/loss.png") and failing["now"]:
                raise StoreError("ReadTimeoutError")
            return super().get(key)

    store = Blip({_key("r1"): canonical(make_results("r1", [1]))})
    _with_report(store, "r1", ["report.html", "loss.png"])
    github, repo = MemoryGitHub(), MemoryRepo()
    first = sync([_target("r1")], Services(store, github, github, repo), OPTIONS)
    assert first.runs[0].problems == ["report loss.png: ReadTimeoutError"]
    assert repo.commits == 0 and "loss.png" not in github.assets.get(1, {})
    failing["now"] = False
    again = sync([_target("r1")], Services(store, github, github, repo), OPTIONS)
    assert again.runs[0].status == "reported" and repo.commits == 1
    assert set(github.assets[1]) == {"report.html", "loss.png"}


def test_a_sync_that_sees_results_json_finds_the_report() -> None:
    """Publish uploads the report before results.json, its commit point: a sync that
    finds results.json attaches the report in the same pass."""
    github, store, repo, services = _world()
    _with_report(store, "r1", ["report.html"])  # publish: the report first ...
    assert sync([_target("r1")], services, OPTIONS).runs[0].status == "pending"
    assert repo.commits == 0 and github.writes == []
    store.objects[_key("r1")] = canonical(make_results("r1", [1]))  # ... then results.json
    report = sync([_target("r1")], services, OPTIONS)
    assert report.runs[0].status == "reported"
    assert "attached report.html to release r1" in report.runs[0].actions
