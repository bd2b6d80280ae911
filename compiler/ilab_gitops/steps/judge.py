"""The judge of the evaluation steps (`steps.endpoint`: its Secret, its private CA)."""

from __future__ import annotations

import httpx

from ilab_gitops.steps.endpoint import Endpoint, endpoint_from_env, tls_verify

Judge = Endpoint


def judge_from_env() -> Judge:
    return endpoint_from_env("judge", "ILAB_JUDGE", "evaluation.judgeSecretRef")


def http_client(ca_bundle: str | None, *, timeout_s: float = 300.0) -> httpx.Client:
    """An httpx client trusting the system CAs plus `ca_bundle` (the judge's private CA)."""
    return httpx.Client(verify=tls_verify(ca_bundle, "judge"), timeout=timeout_s)
