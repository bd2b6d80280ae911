"""`results sync`: report every finished run on GitHub and in the runs repo, once.

For each run with a results.json that differs from `results/<run>.json` on the runs repo's
branch: comment on each taxonomy pull request (found again by its author, the identity doing
the sync, and the hidden marker, and edited in place), label them, create or update the
run's release, then commit `results/<run>.json` and the CHANGELOG.md entry. That commit
comes last and marks the run as reported, so a run with any failure is simply done again by
the next sync; every step first looks at what exists and writes only what differs, so
repeating it neither duplicates nor loses anything.
A rate limit stops all GitHub calls for the rest of the sync.

Anyone can post a comment that starts with the marker, so only comments by the sync's own
identity count as ours: the configured `comment_author`, else the token's login from
GET /user, looked up once (a GitHub App installation token cannot read /user; configure its
`<app-slug>[bot]` login). Marked comments of others are never edited or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from ilab_gitops.results import assets
from ilab_gitops.results.changelog import CHANGELOG_PATH, changelog_entry, update_changelog
from ilab_gitops.results.comment import is_marked, marker, render_comment
from ilab_gitops.results.locations import Links
from ilab_gitops.results.model import RunResults
from ilab_gitops.results.ports import (
    AlreadyExists,
    Comment,
    FileReader,
    GitHubError,
    GitHubPort,
    NotFound,
    PullRequest,
    RateLimited,
    Release,
    ResultsStore,
    RunsRepo,
)
from ilab_gitops.results.release_notes import (
    finish_order,
    previous_run,
    release_tag,
    release_title,
    render_release_notes,
)

RESULTS_DIR = "results"
Status = Literal["pending", "up-to-date", "reported", "failed", "deferred", "invalid"]
DONE: frozenset[Status] = frozenset({"pending", "up-to-date", "reported"})


class StoreError(Exception):
    """Reading the output store failed (network, permissions). `lasting`: asking again will
    not help (no permission, an object over the size limit), unlike a network error."""

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


class RepoError(Exception):
    """Reading or pushing the runs repo failed."""


@dataclass(frozen=True)
class Target:
    """A run on the branch and where its results and pull requests are."""

    run: str
    key: str
    taxonomy_repo: str
    comment: bool = True
    release: bool = True


@dataclass(frozen=True)
class SyncOptions:
    links: Links
    labels: tuple[str, ...] = ()
    #: The login whose marked comments are ours; None: the taxonomy token's login (GET /user).
    comment_author: str | None = None
    dry_run: bool = False


class _Author:
    """Who the sync comments as: configured, or looked up once when first needed."""

    def __init__(self, github: GitHubPort, configured: str | None) -> None:
        self._github = github
        self._login = configured or None
        self._problem: str | None = None

    def login(self) -> str:
        """The login; raises `GitHubError` (always the same) when it cannot be known."""
        if self._login is None and self._problem is None:
            try:
                self._login = self._github.login()
            except RateLimited:
                raise
            except GitHubError as err:
                self._problem = (
                    f"cannot tell which results comments are ours: GET /user failed ({err}); "
                    "set --comment-author (ILAB_COMMENT_AUTHOR) to the login that posts them, "
                    "e.g. my-app[bot] for a GitHub App"
                )
        if self._login is None:
            raise GitHubError(self._problem or "no comment author")
        return self._login


@dataclass
class RunReport:
    run: str
    status: Status = "pending"
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    runs: list[RunReport] = field(default_factory=list)
    rate_limited: RateLimited | None = None

    @property
    def complete(self) -> bool:
        return all(r.status in DONE for r in self.runs)


@dataclass(frozen=True)
class Services:
    store: ResultsStore
    taxonomy: GitHubPort
    runs_github: GitHubPort
    repo: RunsRepo


def results_path(run: str) -> str:
    return f"{RESULTS_DIR}/{run}.json"


def canonical(results: RunResults) -> bytes:
    """How `results/<run>.json` is stored: stable field order, two-space indent."""
    return (results.model_dump_json(indent=2) + "\n").encode("utf-8")


def committed_results(repo: RunsRepo) -> dict[str, RunResults]:
    """Results already reported, by run name (unreadable files are ignored)."""
    found: dict[str, RunResults] = {}
    for name in repo.list_dir(RESULTS_DIR):
        raw = repo.read(f"{RESULTS_DIR}/{name}") if name.endswith(".json") else None
        if raw is None:
            continue
        try:
            results = RunResults.model_validate_json(raw)
        except ValidationError:
            continue
        if name == f"{results.run}.json":
            found[results.run] = results
    return found


def sync(targets: Sequence[Target], services: Services, options: SyncOptions) -> SyncReport:
    report = SyncReport()
    try:
        services.repo.refresh()
        committed = committed_results(services.repo)
    except RepoError as err:
        report.runs = [RunReport(t.run, "failed", problems=[f"runs repo: {err}"]) for t in targets]
        return report
    fresh: list[tuple[Target, RunResults, RunReport]] = []
    for target in sorted(targets, key=lambda t: t.run):
        entry = RunReport(target.run)
        report.runs.append(entry)
        results = _load(target, services.store, entry)
        if results is None:
            continue
        if committed.get(target.run) == results:
            entry.status = "up-to-date"
            continue
        fresh.append((target, results, entry))
    history: dict[str, RunResults] = {**committed, **{r.run: r for _, r, _ in fresh}}
    author = _Author(services.taxonomy, options.comment_author)
    for target, results, entry in sorted(fresh, key=lambda f: finish_order(f[1])):
        if report.rate_limited is not None:
            entry.status = "deferred"
            entry.problems.append("not attempted: GitHub rate limit reached earlier")
            continue
        try:
            _RunReporter(services, options, entry, author).report(target, results, history)
        except RateLimited as err:
            report.rate_limited = err
            entry.status = "deferred"
            entry.problems.append(f"GitHub rate limit: {err}")
    return report


def _load(target: Target, store: ResultsStore, entry: RunReport) -> RunResults | None:
    try:
        raw = store.get(target.key)
    except StoreError as err:
        entry.status = "failed"
        entry.problems.append(f"reading {store.uri(target.key)}: {err}")
        return None
    if raw is None:
        entry.notes.append(f"no results yet at {store.uri(target.key)}")
        return None
    try:
        results = RunResults.model_validate_json(raw)
    except ValidationError as err:
        entry.status = "invalid"
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        entry.problems.append(
            f"{store.uri(target.key)}: {err.error_count()} error(s), "
            f"first at {where}: {first['msg']}"
        )
        return None
    if results.run != target.run:
        entry.status = "invalid"
        entry.problems.append(f"{store.uri(target.key)} is for run {results.run!r}")
        return None
    return results


@contextmanager
def _recorded(entry: RunReport, what: str) -> Iterator[None]:
    """A GitHub error inside becomes a problem of the run; rate limits propagate."""
    try:
        yield
    except RateLimited:
        raise
    except GitHubError as err:
        entry.problems.append(f"{what}: {err}")


def _same(a: str, b: str) -> bool:
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


class _RunReporter:
    """Reports one run; every write is preceded by a look at what exists."""

    def __init__(
        self, services: Services, options: SyncOptions, entry: RunReport, author: _Author
    ) -> None:
        self.services = services
        self.options = options
        self.entry = entry
        self.author = author

    def report(
        self, target: Target, results: RunResults, history: Mapping[str, RunResults]
    ) -> None:
        entry = self.entry
        prs = [self._pull(target.taxonomy_repo, n) for n in results.taxonomy.pullRequests]
        # The report and plots go on the run's release; without one there is nothing to link.
        report = self._report_files(target) if target.release else {}
        for pr in prs:
            if not pr.known:
                continue
            if target.comment:
                body = render_comment(results, pr, self.options.links, report=list(report))
                with _recorded(entry, f"#{pr.number} comment"):
                    self._comment(pr, body, results.run)
            missing = [label for label in self.options.labels if label not in pr.labels]
            if missing:
                with _recorded(entry, f"#{pr.number} labels"):
                    self._label(pr, missing)
        notes = ""
        if target.release:
            previous = previous_run(history.values(), results)
            notes = render_release_notes(
                results, prs, previous, self.options.links, report=list(report)
            )
            unknown = [f"#{pr.number}" for pr in prs if pr.state == "unknown"]
            if unknown:
                entry.problems.append(f"release postponed: could not read {', '.join(unknown)}")
            else:
                with _recorded(entry, "release"):
                    self._release(results, notes, report)
        if entry.problems:
            entry.status = "failed"
            return
        self._commit(target, results, notes)

    def _pull(self, repo: str, number: int) -> PullRequest:
        url = self.options.links.pull_request(repo, number)
        try:
            return self.services.taxonomy.pull_request(repo, number)
        except NotFound:
            self.entry.notes.append(f"#{number}: pull request not found in {repo}; skipped")
            return PullRequest(repo, number, url, state="missing")
        except RateLimited:
            raise
        except GitHubError as err:
            self.entry.problems.append(f"#{number}: reading the pull request: {err}")
            return PullRequest(repo, number, url, state="unknown")

    def _ours(self, pr: PullRequest, run: str) -> list[Comment]:
        """Marked comments of `run` by our own login (logins compare case-insensitively)."""
        login = self.author.login().casefold()
        found = self.services.taxonomy.marker_comments(pr.repo, pr.number, marker(run))
        return sorted(
            (
                c
                for c in found
                if is_marked(c.body, run) and c.author is not None and c.author.casefold() == login
            ),
            key=lambda c: c.id,
        )

    def _comment(self, pr: PullRequest, body: str, run: str) -> None:
        github, dry, actions = self.services.taxonomy, self.options.dry_run, self.entry.actions
        where = f"{pr.repo}#{pr.number}"
        existing = self._ours(pr, run)
        if not existing:
            if dry:
                actions.append(f"would comment on {where}")
                return
            created = github.create_comment(pr.repo, pr.number, body)
            actions.append(f"commented on {where}")
            # A concurrent sync may have commented too: keep the oldest comment, drop the rest.
            existing = self._ours(pr, run)
            if all(c.id != created.id for c in existing):
                existing = sorted([*existing, created], key=lambda c: c.id)
        keep = existing[0]
        for duplicate in existing[1:]:
            if dry:
                actions.append(f"would delete duplicate comment {duplicate.id} on {where}")
                continue
            with suppress(NotFound):
                github.delete_comment(pr.repo, duplicate.id)
            actions.append(f"deleted duplicate comment {duplicate.id} on {where}")
        if _same(keep.body, body):
            return
        if dry:
            actions.append(f"would update the comment on {where}")
            return
        github.update_comment(pr.repo, keep.id, body)
        actions.append(f"updated the comment on {where}")

    def _label(self, pr: PullRequest, labels: list[str]) -> None:
        where, shown = f"{pr.repo}#{pr.number}", ", ".join(labels)
        if self.options.dry_run:
            self.entry.actions.append(f"would label {where}: {shown}")
            return
        self.services.taxonomy.add_labels(pr.repo, pr.number, labels)
        self.entry.actions.append(f"labelled {where}: {shown}")

    def _report_files(self, target: Target) -> dict[str, bytes]:
        found, skipped, retry = assets.report_files(self.services.store, target.key)
        self.entry.notes.extend(skipped)  # an unreadable report never holds back results
        self.entry.problems.extend(retry)  # a passing failure: the next sync tries again
        return found

    def _release(self, results: RunResults, notes: str, report: Mapping[str, bytes]) -> None:
        github, repo = self.services.runs_github, self.options.links.runs_repo
        dry, actions = self.options.dry_run, self.entry.actions
        tag, title = release_tag(results.run), release_title(results)
        existing = github.release(repo, tag)
        if existing is None:
            if dry:
                actions.append(f"would create release {tag}")
                actions.extend(f"would attach {name} to release {tag}" for name in report)
                return
            try:
                existing = github.create_release(repo, tag, title, notes)
                actions.append(f"created release {tag}")
            except AlreadyExists:
                existing = github.release(repo, tag)
                if existing is None:
                    raise
        if not (existing.name == title and _same(existing.body, notes)):
            if dry:
                actions.append(f"would update release {tag}")
            else:
                github.update_release(repo, existing.id, title, notes)
                actions.append(f"updated release {tag}")
        self._attach(existing, report)

    def _attach(self, release: Release, report: Mapping[str, bytes]) -> None:
        github, repo = self.services.runs_github, self.options.links.runs_repo
        self.entry.actions.extend(
            assets.attach(github, repo, release, report, dry_run=self.options.dry_run)
        )

    def _commit(self, target: Target, results: RunResults, notes: str) -> None:
        path, links, entry = results_path(target.run), self.options.links, self.entry

        def update(read: FileReader) -> dict[str, bytes]:
            files = {path: canonical(results)}
            if target.release:
                block = changelog_entry(results, notes, links)
                current = read(CHANGELOG_PATH)
                text = current.decode("utf-8") if current is not None else None
                files[CHANGELOG_PATH] = update_changelog(text, target.run, block).encode()
            return files

        entry.status = "reported"
        if self.options.dry_run:
            also = f" and {CHANGELOG_PATH}" if target.release else ""
            entry.actions.append(f"would commit {path}{also}")
            return
        message = f"results: {target.run}\n\nReported by ilab-gitops results sync.\n"
        try:
            sha = self.services.repo.commit(update, message)
        except RepoError as err:
            entry.problems.append(f"committing {path}: {err}")
            entry.status = "failed"
            return
        if sha is not None:
            entry.actions.append(f"committed {path} ({sha[:12]})")
