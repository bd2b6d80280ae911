"""A Kubernetes API server fake over TLS on 127.0.0.1: ConfigMap get and JSON merge patch, with
bearer tokens and an RBAC rule per token (verbs and resourceNames, as a Role grants them).

Enough for the progress reporter (steps/progress_status.py): the same paths, content types,
status codes and `Status` bodies as the API server (kubernetes.io/docs/reference/using-api/
api-concepts/), and a projected-token folder like the kubelet writes (token, ca.crt,
namespace). The CA and the server certificate are made per test with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[a-z0-9-]+)/configmaps/(?P<name>[a-z0-9.-]+)$")
BODY_LIMIT = 1 << 20


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) in `folder`: a CA and a certificate for 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test-cluster-ca"))
        .issuer_name(_name("test-cluster-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.crt", folder / "server.crt", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Grant:
    """What one token may do: a Role rule on configmaps in one namespace."""

    namespace: str
    resource_names: frozenset[str]
    verbs: frozenset[str] = frozenset({"patch"})


@dataclass
class KubeApiFake:
    ca: Path
    host: str = "127.0.0.1"
    port: int = 0
    grants: dict[str, Grant] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, type
    patches: list[dict[str, Any]] = field(default_factory=list)  # bodies the fake applied
    fail_with: int | None = None
    _server: ThreadingHTTPServer | None = None

    def url(self) -> tuple[str, str]:
        return self.host, str(self.port)

    def token_dir(self, folder: Path, token: str, namespace: str) -> Path:
        """The projected volume a pod gets: token, ca.crt and namespace."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "token").write_text(token + "\n", encoding="ascii")
        (folder / "ca.crt").write_bytes(self.ca.read_bytes())
        (folder / "namespace").write_text(namespace, encoding="utf-8")
        return folder

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path, headers.get("Content-Type", "")))
        if self.fail_with is not None:
            return _status(self.fail_with, "InternalError", "the fake was told to fail")
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if set(query) - {"fieldManager"} or any(len(v) != 1 for v in query.values()):
            return _status(400, "BadRequest", f"unknown query {parts.query}")
        match = PATH.match(parts.path)
        if match is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        namespace, name = match["ns"], match["name"]
        auth = headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        grant = self.grants.get(token) if token else None
        if grant is None:
            return _status(401, "Unauthorized", "Unauthorized")
        verb = {"GET": "get", "PATCH": "patch"}.get(method)
        if (
            verb is None
            or verb not in grant.verbs
            or namespace != grant.namespace
            or name not in grant.resource_names
        ):
            return _status(
                403, "Forbidden", f'configmaps "{name}" is forbidden: cannot {verb} in {namespace}'
            )
        obj = self.configmaps.get((namespace, name))
        if obj is None:
            return _status(404, "NotFound", f'configmaps "{name}" not found')
        if verb == "patch":
            if headers.get("Content-Type") != "application/merge-patch+json":
                return _status(415, "UnsupportedMediaType", "unsupported patch type")
            patch = json.loads(body)
            data = {**obj.get("data", {}), **patch.get("data", {})}
            obj["data"] = {k: v for k, v in data.items() if v is not None}
            self.patches.append(patch)
            managers = obj.setdefault("metadata", {}).setdefault("managedFields", [])
            managers.append({"manager": query.get("fieldManager", ["Python-urllib"])[0]})
        return 200, obj

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(fake: KubeApiFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), BODY_LIMIT)
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            code, obj = fake.handle(self.command, self.path, headers, body)
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def start(folder: Path) -> KubeApiFake:
    """A running fake on 127.0.0.1; call `stop()` when done."""
    ca, cert, key = make_tls(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake = KubeApiFake(ca)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    fake._server, fake.port = server, server.server_address[1]
    threading.Thread(target=server.serve_forever, name="kube-api-fake", daemon=True).start()
    return fake
