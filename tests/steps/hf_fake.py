"""The few Hugging Face Hub endpoints `create_repo`, `create_branch` and `create_commit` use.

Regular (non-LFS) uploads only: `preupload` answers `uploadMode: regular`, so the commit
carries base64 contents in its NDJSON body, which is what this server stores.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class FakeHub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, dict[str, Any]] = {}
        self.branches: dict[str, set[str]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.commits: list[dict[str, Any]] = []
        self.unknown: list[str] = []
        self.validated: list[dict[str, Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
                    if repo in hub.repos:
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
                    lines = [json.loads(line) for line in raw.decode().splitlines() if line]
                    header = next(x["value"] for x in lines if x["key"] == "header")
                    stored = hub.files.setdefault((repo, revision), {})
                    for item in lines:
                        if item["key"] == "file":
                            value = item["value"]
                            stored[value["path"]] = base64.b64decode(value["content"])
                    hub.commits.append(
                        {"repo": repo, "revision": revision, "summary": header["summary"]}
                    )
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
                hub.unknown.append(f"GET {self.path}")
                self._send(404, {"error": f"no route GET {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
