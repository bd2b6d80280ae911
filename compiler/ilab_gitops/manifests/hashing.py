"""Canonical JSON and the hash chain that names steps."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, ASCII only, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain(previous: str, content: Any) -> str:
    """Hash of a step: its own compiled content plus the hash of the step before it."""
    return sha256_text(previous + "\n" + canonical_json(content))


def chain_seed(run: str, attempt: int) -> str:
    """Start of a run's chain; `spec.attempt` enters here so bumping it renames every step."""
    return sha256_text(f"ilab-gitops/v1alpha1\n{run}\n{attempt}")
