"""A stateful fake of the GitHub REST endpoints the results sync uses, on 127.0.0.1.

Every request is matched against GitHub's OpenAPI description (documented path + method,
path/query parameters, request body) and every response the fake sends is validated against
that operation's response schema; mismatches are collected in `violations`, which the
fixture asserts empty, so this fake cannot drift from the real API. Objects are built from
GitHub's own examples in the description, with our fields filled in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pytest_httpserver import HTTPServer
from pytest_httpserver.httpserver import METHOD_ALL
from werkzeug.wrappers import Request, Response

from tests.support.github_openapi import GitHubOpenApi, Match

Json = Any
BODY_LIMIT = 65_536
TIME = "2026-11-24T12:00:00Z"
_DOCS = "https://docs.github.com/rest"


@dataclass
class FakePull:
    number: int
    title: str
    author: str
    files: list[str]
    state: str = "open"
    merged: bool = False
    labels: set[str] = field(default_factory=set)
    deleted: bool = False


@dataclass
class FakeComment:
    id: int
    issue: int
    body: str
    author: str


@dataclass
class FakeAsset:
    id: int
    name: str
    data: bytes
    content_type: str


@dataclass
class FakeRelease:
    id: int
    tag: str
    name: str
    body: str
    assets: dict[str, FakeAsset] = field(default_factory=dict)


@dataclass
class FakeRepo:
    name: str
    pulls: dict[int, FakePull] = field(default_factory=dict)
    comments: dict[int, FakeComment] = field(default_factory=dict)
    releases: dict[int, FakeRelease] = field(default_factory=dict)

    def comments_on(self, number: int) -> list[FakeComment]:
        return sorted((c for c in self.comments.values() if c.issue == number), key=lambda c: c.id)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    status: int
    token: str | None
    operation: str


@dataclass
class Fault:
    method: str
    template: str
    status: int
    message: str
    headers: dict[str, str]
    times: int
    match: Callable[[dict[str, str]], bool]


Reply = tuple[int, Json | None, dict[str, str]]


class FakeGitHub:
    def __init__(self, api: GitHubOpenApi, server: HTTPServer, login: str = "ilab-bot") -> None:
        self.api, self.server, self.login = api, server, login
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self._ids = iter(range(1000, 10**9))
        server.expect_request(_ANY, method=METHOD_ALL).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    # --- state set up by tests -------------------------------------------------------
    def repo(self, name: str) -> FakeRepo:
        return self.repos.setdefault(name, FakeRepo(name))

    def add_pull(self, repo: str, number: int, files: list[str], **kw: Any) -> FakePull:
        pull = FakePull(
            number,
            kw.pop("title", f"Add skill {number}"),
            kw.pop("author", f"contributor{number}"),
            files,
            **kw,
        )
        self.repo(repo).pulls[number] = pull
        return pull

    def fail(
        self,
        method: str,
        template: str,
        status: int,
        *,
        times: int = 1,
        message: str = "Server Error",
        headers: Mapping[str, str] | None = None,
        when: Callable[[dict[str, str]], bool] = lambda params: True,
    ) -> None:
        """Answer the next `times` matching calls with `status` (must be documented)."""
        op = self.api.operation(method, template)
        assert op is not None, f"{method} {template} is not a documented operation"
        assert str(status) in self.api.documented_statuses(op), (
            f"{status} is not documented for {method} {template}; GitHub would not send it"
        )
        self.faults.append(
            Fault(method, template, status, message, dict(headers or {}), times, when)
        )

    def rate_limit(self, method: str, template: str, retry_after: int = 60, **kw: Any) -> None:
        """A secondary rate limit, as GitHub sends it: 403, Retry-After, and its message."""
        self.fail(
            method,
            template,
            403,
            headers={"Retry-After": str(retry_after)},
            message="You have exceeded a secondary rate limit. Please wait a few "
            "minutes before you try again.",
            **kw,
        )

    # --- what the code did -----------------------------------------------------------
    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def calls(self, operation: str) -> list[Recorded]:
        return [r for r in self.requests if r.operation == operation]

    # --- the HTTP side ---------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        method, path = request.method.upper(), request.path
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else None
        found = self.api.match(method, path)
        if isinstance(found, str):
            self.violations.append(found)
            self.requests.append(Recorded(method, path, 404, token, "undocumented"))
            return _json_response(404, {"message": "Not Found", "documentation_url": _DOCS}, {})
        raw = request.get_data()
        body: Json | None = None
        if self.api.binary_body(found.operation):
            body = raw  # an upload: the file's bytes
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.violations.append(f"{method} {path}: request body is not JSON")
        query = {k: request.args.getlist(k) for k in request.args}
        json_body = None if isinstance(body, bytes) else body
        self.violations.extend(self.api.check_request(found, query, json_body, raw))
        status, payload, headers = self._dispatch(found, request, body)
        self.violations.extend(self.api.check_response(found.operation, status, payload))
        self.requests.append(Recorded(method, path, status, token, found.operation.operation_id))
        return _json_response(status, payload, headers)

    def _dispatch(self, found: Match, request: Request, body: Json | None) -> Reply:
        op, params = found.operation, found.path_params
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == op.method
                and fault.template == op.template
                and fault.match(params)
            ):
                fault.times -= 1
                return (
                    fault.status,
                    {"message": fault.message, "documentation_url": _DOCS},
                    (fault.headers),
                )
        if (op.method, op.template) == ("GET", "/user"):
            return 200, self._authenticated_user(), {}
        handler = _HANDLERS.get((op.method, op.template))
        if handler is None:
            self.violations.append(f"{op.method} {op.template}: not implemented by the fake")
            return 404, {"message": "Not Found", "documentation_url": _DOCS}, {}
        repo = self.repos.get(f"{params['owner']}/{params['repo']}")
        if repo is None:
            return _not_found()
        return handler(self, repo, params, request, body)

    # --- GitHub-shaped objects, from the description's examples -------------------------
    def _user(self, login: str) -> Json:
        user = self.api.example("simple-user")
        user.update(
            login=login,
            id=abs(hash(login)) % 10**6,
            url=f"{self.url}/users/{login}",
            html_url=f"https://github.com/{login}",
        )
        return user

    def _authenticated_user(self) -> Json:
        """GET /user: the token's own account (`login`), as GitHub's example shapes it.

        A GitHub App installation token gets 403 here on GitHub; tests say so with
        `fail("GET", "/user", 403, message="Resource not accessible by integration")`.
        """
        user = self.api.example("private-user-response-with-public-profile-information")
        user.update(
            login=self.login,
            id=abs(hash(self.login)) % 10**6,
            url=f"{self.url}/users/{self.login}",
            html_url=f"https://github.com/{self.login}",
        )
        return user

    def _pull(self, repo: FakeRepo, pull: FakePull) -> Json:
        base = f"{self.url}/repos/{repo.name}"
        data = self.api.example("pull-request")
        data.update(
            url=f"{base}/pulls/{pull.number}",
            id=pull.number,
            number=pull.number,
            html_url=f"https://github.com/{repo.name}/pull/{pull.number}",
            issue_url=f"{base}/issues/{pull.number}",
            comments_url=f"{base}/issues/{pull.number}/comments",
            state=pull.state,
            title=pull.title,
            user=self._user(pull.author),
            labels=[self._label(repo, name) for name in sorted(pull.labels)],
            merged=pull.merged,
            merged_at=TIME if pull.merged else None,
            closed_at=TIME if pull.state == "closed" else None,
            requested_teams=[],
            comments=len(repo.comments_on(pull.number)),
        )
        return data

    def _label(self, repo: FakeRepo, name: str) -> Json:
        label = self.api.example("label")
        label.update(name=name, url=f"{self.url}/repos/{repo.name}/labels/{name}")
        return label

    def _comment(self, repo: FakeRepo, comment: FakeComment) -> Json:
        base = f"{self.url}/repos/{repo.name}"
        data = self.api.example("issue-comment")
        data.update(
            id=comment.id,
            body=comment.body,
            user=self._user(comment.author),
            url=f"{base}/issues/comments/{comment.id}",
            html_url=f"https://github.com/{repo.name}/pull/{comment.issue}#issuecomment-{comment.id}",
            issue_url=f"{base}/issues/{comment.issue}",
        )
        return data

    def _release(self, repo: FakeRepo, release: FakeRelease) -> Json:
        base = f"{self.url}/repos/{repo.name}"
        data = self.api.example("release")
        data.update(
            id=release.id,
            tag_name=release.tag,
            name=release.name,
            body=release.body,
            url=f"{base}/releases/{release.id}",
            html_url=f"https://github.com/{repo.name}/releases/tag/{release.tag}",
            assets_url=f"{base}/releases/{release.id}/assets",
            upload_url=f"{base}/releases/{release.id}/assets{{?name,label}}",
            assets=[self._asset(repo, release, a) for a in release.assets.values()],
            author=self._user(self.login),
        )
        return data

    def _asset(self, repo: FakeRepo, release: FakeRelease, asset: FakeAsset) -> Json:
        data = self.api.example("release-asset")
        data.update(
            id=asset.id,
            name=asset.name,
            label="",
            content_type=asset.content_type,
            size=len(asset.data),
            url=f"{self.url}/repos/{repo.name}/releases/assets/{asset.id}",
            browser_download_url=(
                f"https://github.com/{repo.name}/releases/download/{release.tag}/{asset.name}"
            ),
            uploader=self._user(self.login),
        )
        return data

    def next_id(self) -> int:
        return next(self._ids)


_ANY = re.compile(".*")


def _json_response(status: int, payload: Json | None, headers: Mapping[str, str]) -> Response:
    text = "" if payload is None else json.dumps(payload)
    return Response(
        text, status=status, headers=dict(headers), content_type="application/json; charset=utf-8"
    )


def _not_found() -> Reply:
    return 404, {"message": "Not Found", "documentation_url": _DOCS}, {}


def _invalid(message: str, code: str = "custom", resource: str = "IssueComment") -> Reply:
    error = {"resource": resource, "code": code, "field": "body", "message": message}
    return 422, {"message": "Validation Failed", "errors": [error], "documentation_url": _DOCS}, {}


def _page(fake: FakeGitHub, request: Request, items: list[Json]) -> Reply:
    per_page = min(int(request.args.get("per_page", 30)), 100)
    page = max(int(request.args.get("page", 1)), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    headers = {}
    if page < last:

        def link(n: int) -> str:
            query = urlencode({**request.args.to_dict(), "page": n, "per_page": per_page})
            return f"<{fake.url}{request.path}?{query}>"

        headers["Link"] = f'{link(page + 1)}; rel="next", {link(last)}; rel="last"'
    return 200, items[(page - 1) * per_page : page * per_page], headers


def _live_pull(repo: FakeRepo, params: Mapping[str, str], key: str) -> FakePull | None:
    pull = repo.pulls.get(int(params[key]))
    return None if pull is None or pull.deleted else pull


def _release_of(repo: FakeRepo, params: Mapping[str, str]) -> FakeRelease | None:
    return repo.releases.get(int(params["release_id"]))


Handler = Callable[[FakeGitHub, FakeRepo, dict[str, str], Request, Json | None], Reply]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def _route(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[method, template] = handler
        return handler

    return register


@_route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
def _get_pull(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    pull = _live_pull(repo, params, "pull_number")
    return _not_found() if pull is None else (200, fake._pull(repo, pull), {})


@_route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
def _pull_files(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    pull = _live_pull(repo, params, "pull_number")
    if pull is None:
        return 422, {"message": "Validation Failed", "errors": [], "documentation_url": _DOCS}, {}
    entries = []
    for index, name in enumerate(pull.files):
        entry = fake.api.example("diff-entry-items")[0]
        entry.update(sha=f"{index:040x}", filename=name, status="added", patch=None)
        entry.pop("patch")
        entries.append(entry)
    return _page(fake, request, entries)


@_route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def _list_comments(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    if _live_pull(repo, params, "issue_number") is None:
        return _not_found()
    number = int(params["issue_number"])
    return _page(fake, request, [fake._comment(repo, c) for c in repo.comments_on(number)])


@_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def _create_comment(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    if _live_pull(repo, params, "issue_number") is None:
        return _not_found()
    text = str((body or {}).get("body", ""))
    if len(text) > BODY_LIMIT:
        return _invalid(f"Body is too long (maximum is {BODY_LIMIT} characters)")
    comment = FakeComment(fake.next_id(), int(params["issue_number"]), text, fake.login)
    repo.comments[comment.id] = comment
    return 201, fake._comment(repo, comment), {}


@_route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def _update_comment(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    comment = repo.comments.get(int(params["comment_id"]))
    if comment is None:
        return _invalid("comment not found", "missing")
    text = str((body or {}).get("body", ""))
    if len(text) > BODY_LIMIT:
        return _invalid(f"Body is too long (maximum is {BODY_LIMIT} characters)")
    comment.body = text
    return 200, fake._comment(repo, comment), {}


@_route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def _delete_comment(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    repo.comments.pop(int(params["comment_id"]), None)
    return 204, None, {}


@_route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
def _add_labels(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    pull = _live_pull(repo, params, "issue_number")
    if pull is None:
        return _not_found()
    names = body.get("labels", []) if isinstance(body, dict) else body or []
    pull.labels.update(str(n["name"] if isinstance(n, dict) else n) for n in names)
    return 200, [fake._label(repo, n) for n in sorted(pull.labels)], {}


@_route("GET", "/repos/{owner}/{repo}/releases/tags/{tag}")
def _release_by_tag(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    found = next((r for r in repo.releases.values() if r.tag == params["tag"]), None)
    return _not_found() if found is None else (200, fake._release(repo, found), {})


@_route("POST", "/repos/{owner}/{repo}/releases")
def _create_release(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    data = body or {}
    if any(r.tag == data.get("tag_name") for r in repo.releases.values()):
        return _invalid("tag_name already exists", "already_exists", "Release")
    text = str(data.get("body", ""))
    if len(text) > 125_000:
        return _invalid("body is too long (maximum is 125000 characters)", resource="Release")
    release = FakeRelease(fake.next_id(), str(data["tag_name"]), str(data.get("name", "")), text)
    repo.releases[release.id] = release
    return 201, fake._release(repo, release), {}


@_route("PATCH", "/repos/{owner}/{repo}/releases/{release_id}")
def _update_release(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    release = _release_of(repo, params)
    if release is None:
        return _not_found()
    data = body or {}
    release.name = str(data.get("name", release.name))
    release.body = str(data.get("body", release.body))
    return 200, fake._release(repo, release), {}


@_route("GET", "/repos/{owner}/{repo}/releases/{release_id}")
def _get_release(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    release = _release_of(repo, params)
    return _not_found() if release is None else (200, fake._release(repo, release), {})


@_route("GET", "/repos/{owner}/{repo}/releases/{release_id}/assets")
def _list_assets(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    release = _release_of(repo, params)
    if release is None:
        return _not_found()
    return _page(fake, request, [fake._asset(repo, release, a) for a in release.assets.values()])


@_route("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets")
def _upload_asset(
    fake: FakeGitHub, repo: FakeRepo, params: dict[str, str], request: Request, body: Json | None
) -> Reply:
    """uploads.github.com: the file is the body, its name a query parameter."""
    release = _release_of(repo, params)
    if release is None:
        return _not_found()
    name = request.args.get("name", "")
    if name in release.assets:
        return (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
                "documentation_url": _DOCS,
            },
            {},
        )
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    asset = FakeAsset(fake.next_id(), name, bytes(body or b""), content_type)
    release.assets[name] = asset
    return 201, fake._asset(repo, release, asset), {}


@contextmanager
def running_fake_github(api: GitHubOpenApi) -> Iterator[FakeGitHub]:
    """A fake on a free port of 127.0.0.1; fails the test on any OpenAPI violation."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        fake = FakeGitHub(api, server)
        yield fake
        server.check_handler_errors()
        assert fake.violations == [], "\n".join(fake.violations)
    finally:
        server.clear()
        if server.is_running():
            server.stop()
