"""An HTTP proxy on 127.0.0.1 in front of the local S3 server that plays an older server.

moto enforces `If-None-Match: *` on PutObject and CompleteMultipartUpload, as AWS does.
Servers in the field do not all: some ignore the header (the write succeeds and replaces
the object), some reject it. `mode="ignore"` drops the header before forwarding;
`mode="reject"` answers such requests with S3's 501 NotImplemented error document.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
    b"<Message>A header you provided implies functionality that is not implemented"
    b"</Message><Header>If-None-Match</Header></Error>"
)
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "expect"}


class ConditionStrippingProxy:
    def __init__(self, upstream: str, mode: Literal["ignore", "reject"] = "ignore") -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.mode = mode
        self.stripped = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if "If-None-Match" in self.headers and self.command in {"PUT", "POST"}:
                    proxy.stripped += 1
                    if proxy.mode == "reject":
                        self.send_response(501)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(NOT_IMPLEMENTED)))
                        self.end_headers()
                        self.wfile.write(NOT_IMPLEMENTED)
                        return
                    headers = {k: v for k, v in headers.items() if k.lower() != "if-none-match"}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ConditionStrippingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
