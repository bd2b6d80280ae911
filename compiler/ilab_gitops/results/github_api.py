"""`GitHubPort` on PyGithub: the only module of the sync that imports `github`.

Errors become `ports` exceptions: 404/410 `NotFound`, 422 "already_exists" `AlreadyExists`,
403/429 with Retry-After (or a rate-limit message, or no requests left) `RateLimited`,
anything else (5xx, network) `GitHubError`.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import github
import requests
from github.GithubException import GithubException, RateLimitExceededException
from github.GithubRetry import GithubRetry
from github.GitRelease import GitRelease
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest as GhPullRequest

from ilab_gitops.results.ports import (
    AlreadyExists,
    Comment,
    GitHubError,
    NotFound,
    PullRequest,
    RateLimited,
    Release,
)

DEFAULT_API_URL = "https://api.github.com"


class PyGithubClient:
    """One token, one API endpoint; objects read are kept so writes need no second read."""

    def __init__(
        self,
        token: str | None,
        api_url: str = DEFAULT_API_URL,
        *,
        retries: int = 2,
        max_rate_limit_wait: float = 60.0,
        throttle: bool = True,
        timeout: int = 30,
    ) -> None:
        retry = (
            GithubRetry(total=retries, max_rate_limit_wait=max_rate_limit_wait)
            if retries > 0
            else None
        )
        spacing: dict[str, Any] = (
            {} if throttle else {"seconds_between_requests": 0, "seconds_between_writes": 0}
        )
        self._gh = github.Github(
            auth=github.Auth.Token(token) if token else None,
            base_url=api_url.rstrip("/"),
            per_page=100,
            lazy=True,
            retry=retry,
            timeout=timeout,
            **spacing,
        )
        self._pulls: dict[tuple[str, int], GhPullRequest] = {}
        self._comments: dict[int, IssueComment] = {}
        self._releases: dict[int, GitRelease] = {}
        self._login: str | None = None

    def pull_request(self, repo: str, number: int) -> PullRequest:
        with _api():
            pull = self._gh.get_repo(repo).get_pull(number)
            merged, state = pull.merged, pull.state  # the first attribute read GETs the PR
            files: list[str] = []
            for changed in pull.get_files():
                files.append(changed.filename)
                if changed.previous_filename:
                    files.append(changed.previous_filename)
            self._pulls[repo, number] = pull
            return PullRequest(
                repo=repo,
                number=number,
                url=pull.html_url,
                state="merged" if merged else ("open" if state == "open" else "closed"),
                title=pull.title,
                author=pull.user.login if pull.user is not None else None,
                files=tuple(files),
                labels=frozenset(label.name for label in pull.labels),
            )

    def login(self) -> str:
        if self._login is None:
            with _api():
                self._login = self._gh.get_user().login
        return self._login

    def _pull(self, repo: str, number: int) -> GhPullRequest:
        cached = self._pulls.get((repo, number))
        if cached is None:
            cached = self._gh.get_repo(repo).get_pull(number)
            self._pulls[repo, number] = cached
        return cached

    def marker_comments(self, repo: str, number: int, marker: str) -> list[Comment]:
        with _api():
            found = []
            for comment in self._pull(repo, number).get_issue_comments():
                if comment.body and comment.body.startswith(marker):
                    self._comments[comment.id] = comment
                    found.append(_comment(comment))
            return found

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        with _api():
            comment = self._pull(repo, number).create_issue_comment(body)
            self._comments[comment.id] = comment
            return _comment(comment)

    def _issue_comment(self, repo: str, comment_id: int) -> IssueComment:
        cached = self._comments.get(comment_id)
        if cached is None:
            # The sync edits only comments it has just listed or created.
            raise GitHubError(f"comment {comment_id} in {repo} was not listed first")
        return cached

    def update_comment(self, repo: str, comment_id: int, body: str) -> None:
        with _api():
            self._issue_comment(repo, comment_id).edit(body)

    def delete_comment(self, repo: str, comment_id: int) -> None:
        with _api():
            self._issue_comment(repo, comment_id).delete()
            self._comments.pop(comment_id, None)

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None:
        # PullRequest.add_to_labels sends a bare JSON array, a form GitHub's OpenAPI
        # description no longer documents; send the documented {"labels": [...]} object.
        with _api():
            self._gh.requester.requestJsonAndCheck(
                "POST", f"/repos/{repo}/issues/{number}/labels", input={"labels": list(labels)}
            )

    def release(self, repo: str, tag: str) -> Release | None:
        try:
            with _api():
                found = self._gh.get_repo(repo).get_release(tag)
        except NotFound:
            return None
        self._releases[found.id] = found
        return _release(found)

    def create_release(self, repo: str, tag: str, name: str, body: str) -> Release:
        with _api():
            created = self._gh.get_repo(repo).create_git_release(tag, name, body)
            self._releases[created.id] = created
            return _release(created)

    def update_release(self, repo: str, release_id: int, name: str, body: str) -> None:
        with _api():
            self._release_object(repo, release_id).update_release(name=name, message=body)

    def _release_object(self, repo: str, release_id: int) -> GitRelease:
        found = self._releases.get(release_id)
        if found is None:
            found = self._gh.get_repo(repo).get_release(release_id)
            self._releases[release_id] = found
        return found

    def release_assets(self, repo: str, release_id: int) -> list[str]:
        with _api():
            return [asset.name for asset in self._release_object(repo, release_id).get_assets()]

    def upload_release_asset(
        self, repo: str, release_id: int, name: str, data: bytes, content_type: str
    ) -> None:
        with _api():
            self._release_object(repo, release_id).upload_asset_from_memory(
                io.BytesIO(data), len(data), name=name, content_type=content_type
            )


def _comment(comment: IssueComment) -> Comment:
    return Comment(
        id=comment.id,
        body=comment.body or "",
        author=comment.user.login if comment.user is not None else None,
    )


def _release(release: GitRelease) -> Release:
    return Release(
        id=release.id, tag=release.tag_name, name=release.name or "", body=release.body or ""
    )


@contextmanager
def _api() -> Iterator[None]:
    try:
        yield
    except GithubException as err:
        raise translate(err) from err
    except requests.RequestException as err:
        raise GitHubError(f"GitHub API unreachable: {type(err).__name__}: {err}") from err


def translate(err: GithubException) -> GitHubError:
    """The `ports` exception for a PyGithub exception."""
    status = err.status
    headers = {str(k).lower(): str(v) for k, v in (err.headers or {}).items()}
    data = err.data if isinstance(err.data, dict) else {}
    message = f"GitHub API {status}: {data.get('message') or err.message or 'no message'}"
    limited = isinstance(err, RateLimitExceededException) or (
        status in (403, 429)
        and ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0")
    )
    if limited:
        return RateLimited(message, status, _retry_after(headers))
    if status in (404, 410):
        return NotFound(message, status)
    if status == 422 and "already_exists" in json.dumps(data):
        return AlreadyExists(message, status)
    return GitHubError(message, status)


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        if "retry-after" in headers:
            return max(float(headers["retry-after"]), 0.0)
        if "x-ratelimit-reset" in headers:
            return max(float(headers["x-ratelimit-reset"]) - time.time(), 0.0)
    except ValueError:
        return None
    return None
