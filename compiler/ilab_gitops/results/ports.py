"""Value types and the small interfaces the results sync talks through.

The sync (`ilab_gitops.results.sync`) sees GitHub, object storage and the runs repo only through
these protocols; `github_api`, `s3_store` and `git_store` implement them, tests may fake them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

PullState = Literal["open", "closed", "merged", "missing", "unknown"]


@dataclass(frozen=True)
class PullRequest:
    """What the sync knows about a taxonomy pull request.

    `missing`: GitHub answered 404/410 (deleted, or the repository is gone);
    `unknown`: not looked up (offline preview) or the lookup failed.
    """

    repo: str
    number: int
    url: str
    state: PullState = "unknown"
    title: str | None = None
    author: str | None = None
    files: tuple[str, ...] = ()
    labels: frozenset[str] = field(default_factory=frozenset)

    @property
    def known(self) -> bool:
        return self.state not in ("missing", "unknown")


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str | None = None


@dataclass(frozen=True)
class Release:
    id: int
    tag: str
    name: str
    body: str


class GitHubError(Exception):
    """A GitHub API call failed; `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(GitHubError):
    """404 or 410: the object does not exist (any more) or the token cannot see it."""


class AlreadyExists(GitHubError):
    """422 because the object (e.g. a release tag) already exists."""


class RateLimited(GitHubError):
    """Primary or secondary rate limit; `retry_after` in seconds when GitHub said."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class GitHubPort(Protocol):
    """The GitHub operations the sync needs; `repo` is always `owner/name`."""

    def pull_request(self, repo: str, number: int) -> PullRequest: ...

    def login(self) -> str:
        """The login of the token's identity (GET /user).

        GitHub answers 403 for a GitHub App installation token: its bot login
        (`<app-slug>[bot]`) must then be configured instead.
        """
        ...

    def marker_comments(self, repo: str, number: int, marker: str) -> list[Comment]: ...

    def create_comment(self, repo: str, number: int, body: str) -> Comment: ...

    def update_comment(self, repo: str, comment_id: int, body: str) -> None: ...

    def delete_comment(self, repo: str, comment_id: int) -> None: ...

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None: ...

    def release(self, repo: str, tag: str) -> Release | None: ...

    def create_release(self, repo: str, tag: str, name: str, body: str) -> Release: ...

    def update_release(self, repo: str, release_id: int, name: str, body: str) -> None: ...

    def release_assets(self, repo: str, release_id: int) -> list[str]:
        """The names of the files attached to a release."""
        ...

    def upload_release_asset(
        self, repo: str, release_id: int, name: str, data: bytes, content_type: str
    ) -> None:
        """Attach a file; `AlreadyExists` when one of that name is attached already."""
        ...


class ResultsStore(Protocol):
    """Read-only access to the output store."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (yet)."""
        ...

    def uri(self, key: str) -> str: ...


FileReader = Callable[[str], bytes | None]
TreeUpdate = Callable[[FileReader], Mapping[str, bytes]]


class RunsRepo(Protocol):
    """The runs repository's branch on its remote, read and written without a work tree."""

    def refresh(self) -> None:
        """Fetch the branch; reads then see the remote's latest commit."""
        ...

    def read(self, path: str) -> bytes | None: ...

    def list_dir(self, path: str) -> list[str]: ...

    def commit(self, update: TreeUpdate, message: str) -> str | None:
        """Commit `update(reader)`'s files on top of the branch and push; None if unchanged.

        `update` is called again on the new tip when a concurrent push won the race.
        """
        ...
