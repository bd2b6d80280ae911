"""A step's progress into its progress ConfigMap, which its commit status shows.

Only with the Environment's `commitStatusProgress` (manifests/progress.py is the cluster side):
the pod then has, at `ILAB_PROGRESS_TOKEN_DIR`, a projected volume with a token that may patch
its step's ConfigMap `<step name>-progress`, the cluster's CA and the namespace; the kubelet
sets `KUBERNETES_SERVICE_HOST`/`_PORT` in every container. Each report is one JSON merge patch
of `data.description` ("epoch 3/7, 41 %"), at most every `MIN_INTERVAL` seconds and once more
when the step ends: each new text is one commit status (GitHub keeps at most 1,000 per commit
and context) and one entry in Argo CD's notification state (it keeps the last 100). Progress
must never slow or fail a step: a short timeout, no proxy (the API server is in the cluster),
and any error is logged once while the step goes on.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from ilab_gitops.steps.progress import Progress

log = logging.getLogger(__name__)

ENV_TOKEN_DIR = "ILAB_PROGRESS_TOKEN_DIR"
MIN_INTERVAL = 900.0
TIMEOUT = 5.0
#: The Lua health check drops longer text (it keeps Application status small).
MAX_DESCRIPTION = 120
FIELD_MANAGER = "ilab-gitops-progress"


def configmap_name(step_name: str) -> str:
    """The step's progress ConfigMap (the compiler's manifests/progress.py names it)."""
    return f"{step_name}-progress"


def clean(text: str) -> str:
    """One short line: control characters become spaces."""
    flat = "".join(" " if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in text)
    return flat.strip()[:MAX_DESCRIPTION]


class ConfigMapReporter:
    """Patches one ConfigMap's `data.description` through the Kubernetes API."""

    def __init__(
        self,
        url: str,
        token_file: Path,
        context: ssl.SSLContext,
        *,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.token_file = url, token_file
        self.min_interval, self.clock, self.timeout = min_interval, clock, TIMEOUT
        # No proxy: HTTPS_PROXY in an image must not carry the token out of the cluster.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        self._sent_at: float | None = None
        self._sent: str | None = None
        self._warned = False
        self.patches = 0

    def report(self, progress: Progress, *, final: bool = False) -> bool:
        """Send `progress` unless it is the text already sent or the last send is too
        recent (a `final` report waits for nothing); True when the API took it."""
        text = clean(progress.describe())
        if text == self._sent:
            return False
        now = self.clock()
        if not final and self._sent_at is not None and now - self._sent_at < self.min_interval:
            return False
        self._sent_at = now  # also after a failure: a broken API is not asked again at once
        try:
            self._patch(text)
        except Exception as err:
            if not self._warned:
                self._warned = True
                log.warning("progress not posted to the commit status: %s", _reason(err))
            return False
        self._sent = text
        self.patches += 1
        return True

    def _patch(self, text: str) -> None:
        token = self.token_file.read_text(encoding="ascii").strip()
        body = json.dumps({"data": {"description": text}}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="PATCH",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/merge-patch+json",
                "Accept": "application/json",
            },
        )
        with self._opener.open(request, timeout=self.timeout) as answer:
            answer.read(64 * 1024)


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def reporter_from_env(
    step_name: str,
    environ: Mapping[str, str] = os.environ,
    *,
    min_interval: float = MIN_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> ConfigMapReporter | None:
    """The reporter for step `step_name`'s ConfigMap when this pod was given the token, or
    None (the option is off, or the pod lacks what it needs: logged, never an error)."""
    name, folder = configmap_name(step_name), environ.get(ENV_TOKEN_DIR)
    if not folder:
        return None
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_dir = Path(folder)
    try:
        namespace = (token_dir / "namespace").read_text(encoding="utf-8").strip()
        context = ssl.create_default_context(cafile=str(token_dir / "ca.crt"))
    except (OSError, ValueError) as err:
        log.warning("progress not posted to the commit status: %s", _reason(err))
        return None
    if not host or not namespace or not port.isdigit():
        log.warning("progress not posted to the commit status: no Kubernetes API address")
        return None
    authority = f"[{host}]" if ":" in host else host
    # fieldManager names who owns `data.description` in managedFields (else "Python-urllib").
    path = "/api/v1/namespaces/{}/configmaps/{}?fieldManager={}".format(
        urllib.parse.quote(namespace, safe=""), urllib.parse.quote(name, safe=""), FIELD_MANAGER
    )
    return ConfigMapReporter(
        f"https://{authority}:{port}{path}",
        token_dir / "token",
        context,
        min_interval=min_interval,
        clock=clock,
    )
