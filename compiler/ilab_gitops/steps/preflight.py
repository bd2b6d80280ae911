"""Preflight: what later steps need from outside the cluster, checked before anything else.

A wrong judge token, an unreachable output bucket or a Hugging Face revision that does not
exist used to surface at step 04-07, after hours of GPU time. prepare runs this as its first
act, before any download: prepare holds no GPU, and every GPU step waits for prepare, so a
failure here costs minutes, not GPU hours (a separate step would add a pod, a hash in the
chain and a wave for the same guarantee).

Every check runs, and all failures come back at once, one line each, naming the Secret and
key, the endpoint or the spec field. The manifests mount the later steps' Secret keys into
prepare with `optional: true`, so a missing key reaches this check (and its message) instead
of stopping the pod at CreateContainerConfigError. Values are never printed.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ilab_gitops.steps.endpoint import tls_verify
from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

TIMEOUT_S = 20.0


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRefParams(_Params):
    name: str


class SecretKeyRefParams(_Params):
    name: str
    key: str


class SecretKeyParams(_Params):
    """An env var the manifests fill from a Secret key that a later step requires."""

    env: str
    secretKeyRef: SecretKeyRefParams


class S3Params(_Params):
    """A bucket read or written later: `ILAB_<prefix>_*` from `secret`."""

    field: str  # the spec field that names the Secret, e.g. output.secretRef
    prefix: str
    secretRef: SecretRefParams
    objectKeyEnv: str | None = None  # an object that must exist (the SDG tarball)


class JudgeParams(_Params):
    secretRef: SecretRefParams
    caBundle: str | None = None


class HuggingFaceParams(_Params):
    repo: str
    revision: str
    tokenEnv: str | None = None


class PreflightParams(_Params):
    secrets: list[SecretKeyParams]
    s3: list[S3Params]
    s3CaBundle: str | None = None
    judge: JudgeParams | None = None
    huggingFace: HuggingFaceParams | None = None
    #: evaluation.final.taxonomyBaseBranch; None skips the taxonomy check.
    taxonomyBaseBranch: str | None = None


def missing_secret_keys(params: PreflightParams, env: Mapping[str, str]) -> list[str]:
    return [
        f"secret {s.secretKeyRef.name}: key {s.secretKeyRef.key} is missing or empty (env {s.env})"
        for s in params.secrets
        if not env.get(s.env)
    ]


def _ssl_context(ca_bundle: str | None, what: str) -> ssl.SSLContext | str:
    """A context trusting the system CAs plus `ca_bundle`, or a problem line."""
    try:
        verify = tls_verify(ca_bundle, what)
    except StepError as err:
        return str(err)
    return verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()


def check_s3(check: S3Params, env: Mapping[str, str], ca_bundle: str | None) -> list[str]:
    """HeadBucket (and HeadObject of the SDG tarball) with the Secret's credentials and CA."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ilab_gitops.steps.s3 import error_code, make_client, settings_from_env

    what = f"{check.field} (secret {check.secretRef.name})"
    if any(not env.get(f"ILAB_{check.prefix}_{k}") for k in ("BUCKET", "ACCESS_KEY", "SECRET_KEY")):
        return []  # the missing keys are reported on their own
    try:
        settings = settings_from_env(check.prefix, f"the {check.field} Secret", ca_bundle)
    except StepError as exc:
        return [f"{what}: {exc}"]
    where = f"bucket {settings.bucket!r} at {settings.endpoint or 'AWS S3'}"
    client = make_client(settings, max_attempts=2, read_timeout=TIMEOUT_S)
    try:
        client.head_bucket(Bucket=settings.bucket)
        if check.objectKeyEnv and env.get(check.objectKeyEnv):
            key = env[check.objectKeyEnv]
            try:
                client.head_object(Bucket=settings.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return [f"{what}: object {key!r} not found in {where}"]
                raise
    except ClientError as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return [f"{what}: {where} does not exist"]
        if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return [f"{what}: {where} refused the credentials ({code})"]
        return [f"{what}: {where} answered {code or 'an error'}"]
    except BotoCoreError as exc:
        reason = type(exc).__name__
        if "SSL" in reason:
            return [f"{what}: TLS verification of {where} failed (verify_tls, CA bundle)"]
        return [f"{what}: {where} is unreachable ({reason})"]
    return []


def check_judge(check: JudgeParams, env: Mapping[str, str]) -> list[str]:
    """GET <endpoint>/models with the token and CA; the judge model must be listed."""
    endpoint = env.get("ILAB_JUDGE_ENDPOINT", "").rstrip("/")
    token, model = env.get("ILAB_JUDGE_API_TOKEN"), env.get("ILAB_JUDGE_MODEL_NAME")
    what = f"judge (secret {check.secretRef.name})"
    if not endpoint or not token or not model:
        return []  # the missing keys are reported on their own
    if not endpoint.startswith(("http://", "https://")) or not endpoint.endswith("/v1"):
        return [f"{what}: endpoint must be an http(s) URL ending in /v1"]
    context = _ssl_context(check.caBundle, what)
    if isinstance(context, str):
        return [context]
    url = f"{endpoint}/models"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            body = json.loads(response.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return [f"{what}: {url} refused api_token (HTTP {exc.code})"]
        return [f"{what}: {url} answered HTTP {exc.code}"]
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return [f"{what}: TLS verification of {url} failed (evaluation.caBundle)"]
        return [f"{what}: {url} is unreachable ({type(reason).__name__})"]
    except ValueError:
        return [f"{what}: {url} did not answer JSON"]
    served = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
    if model not in served:
        listed = ", ".join(str(s) for s in served[:10]) or "none"
        return [f"{what}: {url} does not serve model_name {model!r} (serves: {listed})"]
    return []


def check_huggingface(check: HuggingFaceParams, env: Mapping[str, str]) -> list[str]:
    """The base model's repo and pinned revision exist and the token may read them."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"baseModel.huggingFace {check.repo}@{check.revision}"
    token = env.get(check.tokenEnv) if check.tokenEnv else None
    try:
        HfApi(endpoint=env.get("HF_ENDPOINT") or None).model_info(
            check.repo, revision=check.revision, token=token or False
        )
    except RevisionNotFoundError:
        return [f"{what}: revision not found"]
    except GatedRepoError:
        return [f"{what}: gated; the token has no access"]
    except RepositoryNotFoundError:
        return [f"{what}: repository not found, or private and the token cannot read it"]
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        return [f"{what}: the Hub answered HTTP {status}"]
    except OSError as exc:
        return [f"{what}: the Hub is unreachable ({type(exc).__name__})"]
    return []


def run_checks(params: PreflightParams, env: Mapping[str, str]) -> list[str]:
    """Every problem found, one line each, in a fixed order. `env` is the process
    environment (the S3 settings are read from it by the shared `settings_from_env`)."""
    problems = missing_secret_keys(params, env)
    for bucket in params.s3:
        problems += check_s3(bucket, env, params.s3CaBundle)
    if params.judge is not None:
        problems += check_judge(params.judge, env)
    if params.huggingFace is not None:
        problems += check_huggingface(params.huggingFace, env)
    return problems


def preflight(params: PreflightParams) -> None:
    """Raise one StepError listing every problem; log what was checked otherwise."""
    problems = run_checks(params, os.environ)
    if problems:
        raise StepError(
            f"preflight found {len(problems)} problem(s) before any download:\n  "
            + "\n  ".join(problems)
        )
    log.info(
        "preflight: %d secret keys, %d bucket(s)%s%s ok",
        len(params.secrets),
        len(params.s3),
        ", judge" if params.judge else "",
        ", Hugging Face revision" if params.huggingFace else "",
    )


def _has_ref(git: Path, ref: str) -> bool:
    """`ref` exists as a loose ref file or in packed-refs (read as data, no git binary)."""
    loose = git / ref
    if loose.is_file() and not loose.is_symlink():
        return True
    try:
        packed = (git / "packed-refs").read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.split()[1:2] == [ref] for line in packed if not line.startswith(("#", "^")))


def check_taxonomy(taxonomy: Path, commit: str, base_branch: str) -> list[str]:
    """The SDG tarball's taxonomy/ is what final evaluation compares: it must be a git checkout
    at the commit the spec names, with the base branch (local or origin/). Checked as soon as
    the tarball is extracted, still before any GPU step, without running git on it."""
    from ilab_gitops.steps.taxonomy import head_commit

    git = taxonomy / ".git"
    if not git.is_dir() or git.is_symlink():
        return [
            "taxonomy/ in the SDG tarball has no .git folder: final evaluation needs the "
            "taxonomy's git history (pack the tarball with taxonomy/.git)"
        ]
    problems = []
    head = head_commit(taxonomy)
    if head != commit:
        problems.append(
            f"taxonomy/ in the SDG tarball is at {head or 'an unreadable HEAD'}, but "
            f"taxonomy.commit names {commit}"
        )
    refs = (f"refs/heads/{base_branch}", f"refs/remotes/origin/{base_branch}")
    if not any(_has_ref(git, ref) for ref in refs):
        problems.append(
            f"taxonomy/ in the SDG tarball has no branch {base_branch!r} "
            "(evaluation.final.taxonomyBaseBranch), locally or as origin/"
        )
    return problems
