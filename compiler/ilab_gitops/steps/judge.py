"""The judge: an OpenAI-compatible endpoint named by a Secret, maybe behind a private CA."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from ilab_gitops.steps.runtime import StepError, secret_env


@dataclass(frozen=True)
class Judge:
    endpoint: str
    model: str
    api_key: str

    def __repr__(self) -> str:  # never print the token
        return f"Judge(endpoint={self.endpoint!r}, model={self.model!r})"


def judge_from_env() -> Judge:
    what = "add key '{}' to the evaluation.judgeSecretRef Secret"
    endpoint = secret_env("ILAB_JUDGE_ENDPOINT", what.format("endpoint")).rstrip("/")
    if not endpoint.endswith("/v1"):
        raise StepError(
            f"judge endpoint {endpoint!r} must end in /v1 (the OpenAI-compatible API root, "
            "e.g. https://judge.example.com/v1)"
        )
    if not endpoint.startswith(("http://", "https://")):
        raise StepError(f"judge endpoint {endpoint!r} must be an http(s) URL")
    return Judge(
        endpoint=endpoint,
        model=secret_env("ILAB_JUDGE_MODEL_NAME", what.format("model_name")),
        api_key=secret_env("ILAB_JUDGE_API_TOKEN", what.format("api_token")),
    )


def http_client(ca_bundle: str | None, *, timeout_s: float = 300.0) -> httpx.Client:
    """An httpx client trusting the system CAs plus `ca_bundle` (the judge's private CA)."""
    if ca_bundle is None:
        return httpx.Client(timeout=timeout_s)
    if not Path(ca_bundle).is_file():
        raise StepError(f"judge CA bundle {ca_bundle} is not mounted (check the ConfigMap key)")
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_bundle)
    except ssl.SSLError as exc:
        raise StepError(f"judge CA bundle {ca_bundle} is not a PEM certificate: {exc}") from None
    return httpx.Client(verify=context, timeout=timeout_s)
