"""An OpenAI-compatible server named by a Secret (endpoint, model_name, api_token), maybe
behind a private CA: the judge of the evaluation steps and the teacher of SDG. No httpx
here: prepare's preflight (fetch image, which has none) checks the judge's CA with it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ilab_gitops.steps.runtime import StepError, secret_env


@dataclass(frozen=True)
class Endpoint:
    endpoint: str
    model: str
    api_key: str

    def __repr__(self) -> str:  # never print the key
        return f"Endpoint(endpoint={self.endpoint!r}, model={self.model!r})"


def endpoint_from_env(role: str, env_prefix: str, secret_field: str) -> Endpoint:
    """`<env_prefix>_ENDPOINT`, `_MODEL_NAME`, `_API_TOKEN`, as the manifests mount them from
    the Secret that `secret_field` names; `role` ("judge", "teacher") names it in messages."""
    what = f"add key '{{}}' to the {secret_field} Secret"
    endpoint = secret_env(f"{env_prefix}_ENDPOINT", what.format("endpoint")).rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise StepError(f"{role} endpoint {endpoint!r} must be an http(s) URL")
    if not endpoint.endswith("/v1"):
        raise StepError(
            f"{role} endpoint {endpoint!r} must end in /v1 (the OpenAI-compatible API root, "
            f"e.g. https://{role}.example.com/v1)"
        )
    return Endpoint(
        endpoint=endpoint,
        model=secret_env(f"{env_prefix}_MODEL_NAME", what.format("model_name")),
        api_key=secret_env(f"{env_prefix}_API_TOKEN", what.format("api_token")),
    )


def tls_verify(ca_bundle: str | None, who: str) -> ssl.SSLContext | bool:
    """The TLS verification: the system CAs plus `ca_bundle` (a private CA) when set; a
    bundle that is missing or not PEM is a StepError starting with `who`."""
    if ca_bundle is None:
        return True
    if not Path(ca_bundle).is_file():
        raise StepError(
            f"{who}: CA bundle {ca_bundle} is not mounted (check the ConfigMap and key)"
        )
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_bundle)
    except ssl.SSLError as exc:
        raise StepError(
            f"{who}: CA bundle {ca_bundle} is not a PEM certificate ({exc.reason})"
        ) from None
    return context
