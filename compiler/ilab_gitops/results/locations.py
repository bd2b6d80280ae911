"""Where a run's results are, and the repositories and links the sync needs.

Pure: everything comes in as arguments (the CLI passes `os.environ` for the settings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

RESULTS_FILE = "results.json"
#: What the publish step uploads beside results.json, under `report/` (ilab_gitops.report:
#: the page and its plots), attached to the run's release by the sync, in this order.
REPORT_DIR = "report"
REPORT_FILES = ("report.html", "loss.png", "mt-bench.png", "branch.png")
REPORT_TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png"}
ENV_PREFIX = "ILAB_RESULTS_S3_"
_REPO_PATH = re.compile(r"^/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def run_prefix(run: PipelineRun, env: Environment) -> str:
    """Folder of the run in the output store (the upload step's `destinationPrefix`)."""
    prefix = run.spec.output.prefix.rstrip("/")
    return f"{prefix}/{env.spec.cluster}/{env.spec.namespace}/{run.metadata.name}"


def results_key(run: PipelineRun, env: Environment) -> str:
    return f"{run_prefix(run, env)}/{RESULTS_FILE}"


@dataclass(frozen=True)
class S3Settings:
    """Read-only credentials for the output store, given to the workflow as secrets."""

    bucket: str
    access_key: str | None
    secret_key: str | None
    endpoint: str | None
    region: str
    verify_tls: bool


def s3_settings(env: Mapping[str, str]) -> S3Settings:
    """Settings from ILAB_RESULTS_S3_{BUCKET,ACCESS_KEY,SECRET_KEY,ENDPOINT,REGION,VERIFY_TLS}."""

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name, "").strip()
        return value or None

    bucket = get("BUCKET")
    if bucket is None:
        raise SettingsError(f"{ENV_PREFIX}BUCKET is not set")
    access, secret = get("ACCESS_KEY"), get("SECRET_KEY")
    if (access is None) != (secret is None):
        raise SettingsError(
            f"set both {ENV_PREFIX}ACCESS_KEY and {ENV_PREFIX}SECRET_KEY, or neither"
        )
    endpoint = get("ENDPOINT")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise SettingsError(f"{ENV_PREFIX}ENDPOINT must be an http(s) URL, got {endpoint!r}")
    verify = (get("VERIFY_TLS") or "true").lower()
    if verify not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{ENV_PREFIX}VERIFY_TLS must be true or false, got {verify!r}")
    return S3Settings(
        bucket=bucket,
        access_key=access,
        secret_key=secret,
        endpoint=endpoint,
        region=get("REGION") or "us-east-1",
        verify_tls=verify in ("true", "1", "yes"),
    )


def repo_from_url(url: str, server_url: str) -> str:
    """`owner/name` of a repository URL on `server_url` (e.g. https://github.com)."""
    parts, server = urlsplit(url), urlsplit(server_url)
    match = _REPO_PATH.match(parts.path)
    if parts.scheme != "https" or parts.netloc.lower() != server.netloc.lower() or not match:
        raise SettingsError(f"{url} is not a repository on {server_url}")
    return f"{match.group(1)}/{match.group(2)}"


@dataclass(frozen=True)
class Links:
    """Web locations used in comments and release notes."""

    server_url: str
    runs_repo: str
    branch: str = "main"
    rendered_dir: str = "rendered"
    #: run name -> its environment: runs are rendered into rendered/<environment>/<run>/.
    run_environments: Mapping[str, str] = field(default_factory=dict, hash=False)

    def _base(self) -> str:
        return f"{self.server_url.rstrip('/')}/{self.runs_repo}"

    def run_folder(self, run: str) -> str:
        """The run's rendered folder; the rendered/ root when its environment is not known."""
        environment = self.run_environments.get(run)
        folder = f"{environment}/{run}" if environment else ""
        return f"{self._base()}/tree/{self.branch}/{self.rendered_dir}/{folder}".rstrip("/")

    def results_file(self, run: str) -> str:
        return f"{self._base()}/blob/{self.branch}/results/{run}.json"

    def release(self, tag: str) -> str:
        return f"{self._base()}/releases/tag/{tag}"

    def release_asset(self, tag: str, name: str) -> str:
        """Where GitHub serves a file attached to the release `tag`."""
        return f"{self._base()}/releases/download/{tag}/{name}"

    def pull_request(self, repo: str, number: int) -> str:
        return f"{self.server_url.rstrip('/')}/{repo}/pull/{number}"
