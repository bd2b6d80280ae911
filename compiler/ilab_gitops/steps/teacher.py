"""The SDG teacher: an OpenAI-compatible endpoint named by a Secret (the judge's shape).

`preflight` runs first in the sdg step: one `GET /v1/models` with the key and the CA bundle,
bounded to seconds, so a wrong endpoint, key, CA or model name fails before any cloning or
generation. Every failure is one line that names the endpoint and never the key. What the
server sends back is untrusted: only model ids are quoted, shortened and `repr`-escaped.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from ilab_gitops.steps.endpoint import Endpoint, endpoint_from_env, tls_verify
from ilab_gitops.steps.runtime import StepError

PREFLIGHT_TIMEOUT_S = 10.0
_SHOWN_MODELS = 5
_MAX_ID = 80


Teacher = Endpoint


def teacher_from_env() -> Teacher:
    return endpoint_from_env("teacher", "ILAB_TEACHER", "sdgData.generate.teacherSecretRef")


def verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """The TLS verification for the teacher: the system CAs plus `ca_bundle` when set."""
    return tls_verify(ca_bundle, "teacher")


def _short(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _MAX_ID else text[:_MAX_ID] + "...")


def _model_ids(body: Any) -> list[str] | None:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def preflight(
    teacher: Teacher, ca_bundle: str | None, *, timeout_s: float = PREFLIGHT_TIMEOUT_S
) -> list[str]:
    """Check that the teacher answers, accepts the key and serves the model; its model ids."""
    where = f"teacher {teacher.endpoint}"
    try:
        with httpx.Client(verify=verify(ca_bundle), timeout=timeout_s) as client:
            response = client.get(
                f"{teacher.endpoint}/models",
                headers={"Authorization": f"Bearer {teacher.api_key}"},
            )
    except httpx.TimeoutException:
        raise StepError(f"{where}: no answer to GET /models within {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StepError(f"{where}: unreachable ({reason})") from None
    if response.status_code in (401, 403):
        raise StepError(
            f"{where}: GET /models refused the API key (HTTP {response.status_code}); "
            "check api_token in the teacher Secret"
        )
    if response.status_code != 200:
        raise StepError(f"{where}: GET /models answered HTTP {response.status_code}")
    try:
        ids = _model_ids(response.json())
    except ValueError:
        ids = None
    if ids is None:
        raise StepError(f"{where}: GET /models is not an OpenAI-compatible model list")
    if teacher.model not in ids:
        shown = ", ".join(_short(i) for i in ids[:_SHOWN_MODELS]) or "none"
        more = f" and {len(ids) - _SHOWN_MODELS} more" if len(ids) > _SHOWN_MODELS else ""
        raise StepError(
            f"{where} does not serve model {_short(teacher.model)} (it lists {shown}{more}); "
            "check model_name in the teacher Secret"
        )
    return ids
