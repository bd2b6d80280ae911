from __future__ import annotations

import pytest
from github.GithubException import (
    GithubException,
    RateLimitExceededException,
    UnknownObjectException,
)

from ilab_gitops.results.github_api import translate
from ilab_gitops.results.ports import AlreadyExists, GitHubError, NotFound, RateLimited


@pytest.mark.parametrize(
    ("err", "kind", "message"),
    [
        (
            UnknownObjectException(404, {"message": "Not Found"}, {}),
            NotFound,
            "GitHub API 404: Not Found",
        ),
        (GithubException(410, {"message": "Gone"}, {}), NotFound, "GitHub API 410: Gone"),
        (
            GithubException(
                422, {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}, {}
            ),
            AlreadyExists,
            "GitHub API 422: Validation Failed",
        ),
        (
            GithubException(422, {"message": "Validation Failed"}, {}),
            GitHubError,
            "GitHub API 422: Validation Failed",
        ),
        (
            GithubException(503, {"message": "Service Unavailable"}, {}),
            GitHubError,
            "GitHub API 503: Service Unavailable",
        ),
        (
            GithubException(403, {"message": "Resource not accessible by integration"}, {}),
            GitHubError,
            "GitHub API 403: Resource not accessible by integration",
        ),
    ],
)
def test_translate(err: GithubException, kind: type[GitHubError], message: str) -> None:
    translated = translate(err)
    assert type(translated) is kind
    assert (str(translated), translated.status) == (message, err.status)


@pytest.mark.parametrize(
    ("err", "retry_after"),
    [
        (GithubException(403, {"message": "slow down"}, {"Retry-After": "30"}), 30.0),
        (GithubException(429, {"message": "slow down"}, {"retry-after": "5"}), 5.0),
        (RateLimitExceededException(403, {"message": "API rate limit exceeded"}, {}), None),
        (
            GithubException(
                403, {"message": "x"}, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}
            ),
            0.0,
        ),
    ],
)
def test_rate_limits(err: GithubException, retry_after: float | None) -> None:
    translated = translate(err)
    assert isinstance(translated, RateLimited)
    assert translated.retry_after == retry_after
