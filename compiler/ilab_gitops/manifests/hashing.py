"""Canonical JSON and the hash chain that names steps."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ilab_gitops.spec.pipeline_run import PipelineRun


#: One encoder for every call: `json.dumps` with these options builds a new one each time.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, ASCII only, no NaN."""
    return _CANONICAL.encode(value)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain(previous: str, canonical: str) -> str:
    """Hash of a step: its own compiled content (canonical JSON) plus the previous step's hash."""
    return sha256_text(previous + "\n" + canonical)


def chain_seed(run: str, attempt: int) -> str:
    """Start of a run's chain; `spec.attempt` enters here so bumping it renames every step."""
    return sha256_text(f"ilab-gitops/v1alpha1\n{run}\n{attempt}")


_encode_str = json.encoder.encode_basestring  # the C encoder behind json.dumps


def pretty_json(value: Any, indent: str = "") -> str:
    """Indented, key-sorted JSON, the text of
    `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)`.

    The standard library drops to its pure-Python encoder whenever `indent` is set; params
    are small and shallow, so this recursion with the C string encoder is much faster.
    Exact types are checked first (the common case), subclasses after.
    """
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = indent + "  "
        items = []
        for key in sorted(value):
            item = value[key]
            kind = type(item)
            if kind is str:
                text = _encode_str(item)
            elif kind is int:
                text = int.__repr__(item)
            else:
                text = pretty_json(item, inner)
            items.append(f"{inner}{_encode_str(key)}: {text}")
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return _pretty_other(value, indent)


def _pretty_other(value: Any, indent: str) -> str:
    if isinstance(value, str):
        return _encode_str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinity are not JSON")
        return float.__repr__(value)
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_encode_str(k)}: {pretty_json(value[k], inner)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return (
            "[\n" + ",\n".join(inner + pretty_json(v, inner) for v in value) + "\n" + indent + "]"
        )
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


#: The last run hashed and its digest: compiling a run asks twice (the publish step's
#: annotation and its params). Runs are immutable, so the identity check is enough.
_last_spec: list[tuple[object, str]] = []


def spec_sha256(run: PipelineRun) -> str:
    """sha256 of the run spec's canonical JSON (defaults filled in)."""
    if _last_spec and _last_spec[0][0] is run:
        return _last_spec[0][1]
    digest = sha256_text(canonical_json(run.model_dump(mode="json")))
    _last_spec[:] = [(run, digest)]
    return digest
