"""The judge of the evaluation steps (`steps.endpoint`: its Secret, its private CA)."""

from __future__ import annotations

import httpx

from ilab_gitops.steps.endpoint import Endpoint, endpoint_from_env
from ilab_gitops.steps.endpoint import http_client as _client

Judge = Endpoint


def judge_from_env() -> Judge:
    return endpoint_from_env("judge", "ILAB_JUDGE", "evaluation.judgeSecretRef")


def http_client(ca_bundle: str | None, *, timeout_s: float = 300.0) -> httpx.Client:
    """An httpx client trusting the system CAs plus `ca_bundle` (the judge's private CA)."""
    return _client(ca_bundle, "judge", timeout_s=timeout_s)
