"""A local Hugging Face Hub: the endpoints `HfApi` uploads and `snapshot_download` use.

Uploads (`create_repo`, `create_branch`, `create_commit`) are regular (non-LFS) only:
`preupload` answers `uploadMode: regular`, so the commit carries base64 contents in its
NDJSON body, which is what this server stores. What is uploaded is also served back like
`add_model`'s repos: a new repo's `main` holds the `.gitattributes` the Hub writes into every
new repo, a new branch starts from `main` (or the `startingPoint` sent), a commit (file
additions and `deletedFile`s) moves its branch to a new snapshot, and `GET /api/models/{repo}`
(`model_info` without a revision) answers for `main`, with `private` as created.

Downloads follow huggingface_hub 2.x's `snapshot_download`: `GET /api/models/{repo}/revision/
{rev}` resolves the revision to a commit (`sha`, `siblings`), `GET /api/models/{repo}/tree/
{commit}?recursive=True` lists the files (paginated with a `Link: <...>; rel="next"` header, as
the Hub does), then per file `HEAD /{repo}/resolve/{commit}/{path}` gives `X-Repo-Commit`, `ETag`
and `Content-Length`, and a `GET` the bytes. LFS files (`lfs_suffixes`) answer the HEAD with a
302 to a second server standing in for the CDN, with `X-Linked-Etag` (the sha256) and
`X-Linked-Size`; the client must not send its token there (`cdn_seen` records what it sent).
Errors carry the Hub's `X-Error-Code` headers (RepoNotFound, RevisionNotFound, EntryNotFound),
and a wrong token gets the Hub's 401 "Invalid credentials in Authorization header".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """What git stores for an LFS file: the Hub reports this blob's oid in tree listings."""
    sha = hashlib.sha256(data).hexdigest()
    spec = "https://git-lfs.github.com/spec/v1"
    return f"version {spec}\noid sha256:{sha}\nsize {len(data)}\n".encode()


@dataclass(frozen=True)
class Snapshot:
    """One commit of a model repo: what `add_model` serves under a branch name and its sha."""

    commit: str
    files: dict[str, bytes]
    lfs: frozenset[str]


@dataclass
class Seen:
    """A request as the fake received it (method, path without query, Authorization header)."""

    method: str
    path: str
    authorization: str | None
    query: dict[str, list[str]] = field(default_factory=dict)


class FakeHub:
    def __init__(self, token: str, *, tree_page_size: int = 1000) -> None:
        self.token = token
        self.tree_page_size = tree_page_size
        self.repos: dict[str, dict[str, Any]] = {}
        self.branches: dict[str, set[str]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.commits: list[dict[str, Any]] = []
        self.unknown: list[str] = []
        self.validated: list[dict[str, Any]] = []
        self.models: dict[str, dict[str, Snapshot]] = {}
        self.private: set[str] = set()
        self.seen: list[Seen] = []
        self.cdn_seen: list[Seen] = []
        self.telemetry: list[Seen] = []
        self.blobs: dict[str, bytes] = {}
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(
                self,
                status: int,
                body: Any,
                *,
                headers: dict[str, str] | None = None,
                head: bool = False,
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _error(
                self, status: int, message: str, code: str | None = None, *, head: bool = False
            ) -> None:
                headers = {"X-Error-Message": message}
                if code is not None:
                    headers["X-Error-Code"] = code
                self._send(status, {"error": message}, headers=headers, head=head)

            def do_POST(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    self._send(401, {"error": "Invalid credentials"})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    body = json.loads(raw)
                    repo = (
                        f"{body['organization']}/{body['name']}"
                        if body.get("organization")
                        else body["name"]
                    )
                    if repo in hub.repos or repo in hub.models:
                        self._send(
                            409,
                            {
                                "error": "You already created this model repo",
                                "url": f"{hub.url}/{repo}",
                            },
                        )
                        return
                    hub.repos[repo] = body
                    hub.branches[repo] = {"main"}
                    private = body.get("private") or body.get("visibility") == "private"
                    hub.add_model(repo, {".gitattributes": GITATTRIBUTES}, private=bool(private))
                    self._send(200, {"url": f"{hub.url}/{repo}", "name": repo})
                    return
                if path == "/api/validate-yaml":
                    # The Hub checks model card metadata; base_model must be a repo id.
                    content = json.loads(raw)["content"]
                    if content.lstrip().startswith("---"):
                        content = content.lstrip().split("---")[1]
                    meta = yaml.safe_load(content) or {}
                    base = meta.get("base_model")
                    if base is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", str(base)):
                        self._send(400, {"error": f"invalid base_model {base!r}"})
                        return
                    hub.validated.append(meta)
                    self._send(200, {"warnings": []})
                    return
                if match := re.fullmatch(r"/api/models/(.+)/branch/(.+)", path):
                    repo, branch = match.groups()
                    if branch in hub.branches.setdefault(repo, {"main"}):
                        self._send(409, {"error": "Reference already exists"})
                        return
                    hub.branches[repo].add(branch)
                    start = (json.loads(raw) if raw else {}).get("startingPoint") or "main"
                    base = hub.models.get(repo, {}).get(start)
                    if base is not None:
                        hub.add_model(repo, base.files, branch=branch, private=repo in hub.private)
                    self._send(200, {})
                    return
                if match := re.fullmatch(r"/api/models/(.+)/preupload/(.+)", path):
                    body = json.loads(raw)
                    self._send(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in body["files"]
                            ]
                        },
                    )
                    return
                if match := re.fullmatch(r"/api/models/(.+)/commit/(.+)", path):
                    repo, revision = match.groups()
                    hub.apply_commit(repo, revision, raw)
                    self._send(
                        200,
                        {
                            "commitUrl": f"{hub.url}/{repo}/commit/abc",
                            "commitOid": "a" * 40,
                            "success": True,
                        },
                    )
                    return
                hub.unknown.append(f"POST {path}")
                self._send(404, {"error": f"no route POST {path}"})

            def do_GET(self) -> None:
                self._read(head=False)

            def do_HEAD(self) -> None:
                self._read(head=True)

            def _read(self, *, head: bool) -> None:
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization")
                seen = Seen(self.command, url.path, auth, parse_qs(url.query))
                if url.path == "/api/agent-harnesses":
                    # huggingface_hub fetches this registry (no token) for its User-Agent
                    # unless HF_HUB_DISABLE_TELEMETRY is set; kept apart from `seen`.
                    with hub.lock:
                        hub.telemetry.append(seen)
                    self._send(200, {"standardEnvVars": [], "harnesses": {}}, head=head)
                    return
                with hub.lock:
                    hub.seen.append(seen)
                if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)", url.path):
                    snapshot = self._snapshot(match[1], "main", auth, head=head)
                    if snapshot is not None:
                        self._send(200, hub.model_info(match[1], snapshot), head=head)
                    return
                if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", url.path):
                    snapshot = self._snapshot(match[1], unquote(match[2]), auth, head=head)
                    if snapshot is not None:
                        self._send(200, hub.model_info(match[1], snapshot), head=head)
                    return
                if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", url.path):
                    snapshot = self._snapshot(match[1], unquote(match[2]), auth, head=head)
                    if snapshot is not None:
                        self._tree(snapshot, url.query, head=head)
                    return
                if match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", url.path):
                    snapshot = self._snapshot(match[1], unquote(match[2]), auth, head=head)
                    if snapshot is not None:
                        self._resolve(snapshot, unquote(match[3]), head=head)
                    return
                hub.unknown.append(f"{self.command} {self.path}")
                self._error(404, f"no route {self.command} {self.path}", head=head)

            def _snapshot(
                self, repo: str, revision: str, auth: str | None, *, head: bool
            ) -> Snapshot | None:
                if auth is not None and auth != f"Bearer {hub.token}":
                    self._error(401, INVALID_CREDENTIALS, head=head)
                    return None
                refs = hub.models.get(repo)
                if refs is None or (repo in hub.private and auth is None):
                    # The Hub hides private repos: 401 without a token, 404 with one.
                    status = 401 if auth is None else 404
                    self._error(status, "Repository not found", "RepoNotFound", head=head)
                    return None
                snapshot = refs.get(revision)
                if snapshot is None:
                    self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound", head=head)
                return snapshot

            def _tree(self, snapshot: Snapshot, query: str, *, head: bool) -> None:
                params = parse_qs(query)
                entries = hub.tree_entries(snapshot)
                start = int(params.get("cursor", ["0"])[0])
                page = entries[start : start + hub.tree_page_size]
                headers = {}
                if start + hub.tree_page_size < len(entries):
                    base = f"{hub.url}{urlsplit(self.path).path}"
                    nxt = f"{base}?recursive=True&cursor={start + hub.tree_page_size}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, page, headers=headers, head=head)

            def _resolve(self, snapshot: Snapshot, name: str, *, head: bool) -> None:
                data = snapshot.files.get(name)
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", snapshot.commit)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if name in snapshot.lfs:
                    sha = hashlib.sha256(data).hexdigest()
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn_url}/lfs/{sha}")
                    self.send_header("X-Repo-Commit", snapshot.commit)
                    self.send_header("ETag", f'"{git_blob_oid(lfs_pointer(data))}"')
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{git_blob_oid(data)}"')
                self.send_header("X-Repo-Commit", snapshot.commit)
                self.end_headers()
                if not head:
                    self.wfile.write(data)

        class CdnHandler(BaseHTTPRequestHandler):
            """Signed-URL storage: serves blobs by sha256 to anyone, records the headers."""

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                with hub.lock:
                    hub.cdn_seen.append(Seen("GET", self.path, self.headers.get("Authorization")))
                data = hub.blobs.get(self.path.removeprefix("/lfs/"))
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), CdnHandler)
        # A short poll interval: shutdown() waits for it, twice per test.
        self.thread, self.cdn_thread = (
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for s in (self.server, self.cdn)
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cdn_url(self) -> str:
        host, port = self.cdn.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_model(
        self,
        repo: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        private: bool = True,
        lfs_suffixes: tuple[str, ...] = (".safetensors", ".bin"),
    ) -> str:
        """Serve `files` as the head of `branch`; returns the commit sha the Hub would report."""
        digest = hashlib.sha1()
        for name in sorted(files):
            digest.update(f"{name}\0{git_blob_oid(files[name])}\n".encode())
        commit = digest.hexdigest()
        lfs = frozenset(name for name in files if name.endswith(lfs_suffixes))
        snapshot = Snapshot(commit, dict(files), lfs)
        refs = self.models.setdefault(repo, {})
        refs[branch] = refs[commit] = snapshot
        for name in lfs:
            self.blobs[hashlib.sha256(files[name]).hexdigest()] = files[name]
        if private:
            self.private.add(repo)
        return commit

    def apply_commit(self, repo: str, revision: str, raw: bytes) -> None:
        """A `create_commit` NDJSON body: store the files and move the branch."""
        lines = [json.loads(line) for line in raw.decode().splitlines() if line]
        header = next(x["value"] for x in lines if x["key"] == "header")
        stored = self.files.setdefault((repo, revision), {})
        current = self.models.get(repo, {}).get(unquote(revision))
        tree = dict(current.files) if current is not None else {}
        for item in lines:
            if item["key"] == "file":
                value = item["value"]
                stored[value["path"]] = base64.b64decode(value["content"])
                tree[value["path"]] = stored[value["path"]]
            elif item["key"] == "deletedFile":
                tree.pop(item["value"]["path"], None)
        if current is not None:
            self.add_model(repo, tree, branch=unquote(revision), private=repo in self.private)
        self.commits.append({"repo": repo, "revision": revision, "summary": header["summary"]})

    def model_info(self, repo: str, snapshot: Snapshot) -> dict[str, Any]:
        return {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": repo.split("/", maxsplit=1)[0],
            "sha": snapshot.commit,
            "private": repo in self.private,
            "disabled": False,
            "gated": False,
            "tags": ["transformers", "safetensors", "llama"],
            "library_name": "transformers",
            "siblings": [{"rfilename": name} for name in sorted(snapshot.files)],
        }

    @staticmethod
    def tree_entries(snapshot: Snapshot) -> list[dict[str, Any]]:
        """`list_repo_tree(recursive=True)` entries: folders and files, in path order."""
        entries: dict[str, dict[str, Any]] = {}
        for name, data in snapshot.files.items():
            parts = name.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                entries.setdefault(
                    folder,
                    {
                        "type": "directory",
                        "oid": hashlib.sha1(folder.encode()).hexdigest(),
                        "size": 0,
                        "path": folder,
                    },
                )
            lfs = name in snapshot.lfs
            entry: dict[str, Any] = {
                "type": "file",
                "oid": git_blob_oid(lfs_pointer(data) if lfs else data),
                "size": len(data),
                "path": name,
            }
            if lfs:
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": len(lfs_pointer(data)),
                }
            entries[name] = entry
        return [entries[path] for path in sorted(entries)]

    def __enter__(self) -> FakeHub:
        self.thread.start()
        self.cdn_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server, thread in ((self.server, self.thread), (self.cdn, self.cdn_thread)):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
