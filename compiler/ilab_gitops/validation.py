"""Turn parsed documents into spec models, or into located, readable diagnostics.

Pydantic reports errors by model path; the source map turns each into `file:line:col`, and
the messages are rewritten for people who write YAML, not Python.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.sources import Document, PathKey
from ilab_gitops.spec.base import DNS1035_PATTERN, DNS1123_PATTERN
from ilab_gitops.spec.credentials import find_credentials
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

SpecModel = PipelineRun | Environment
_KINDS: dict[str, type[PipelineRun] | type[Environment]] = {
    "PipelineRun": PipelineRun,
    "Environment": Environment,
}

_PATTERN_HINTS = {
    DNS1035_PATTERN: "must be a DNS-1035 label: lowercase letters, digits and '-', "
    "starting with a letter and ending with a letter or digit",
    DNS1123_PATTERN: "must be a DNS label: lowercase letters, digits and '-', "
    "starting and ending with a letter or digit",
    r"^[0-9a-f]{40}$": "must be a full 40-character lowercase hex commit sha",
    r"^[0-9a-f]{64}$": "must be 64 lowercase hex characters (a sha256)",
}


@dataclass(frozen=True)
class Checked:
    """A document that validated, with its model."""

    document: Document
    model: SpecModel


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}.get(
        type(value), type(value).__name__
    )


def _show(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'"{shown}"'
    if isinstance(value, dict | list):
        return "a " + type_name(value)
    return repr(value).lower() if isinstance(value, bool) else repr(value)


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_path(data: Any, loc: tuple[int | str, ...]) -> PathKey:
    """The longest prefix of a pydantic location that exists in the data (drops union tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            if isinstance(node, dict) and isinstance(part, str) and len(path) == len(loc) - 1:
                path.append(part)  # a missing or unknown key: keep it for the message
            break
        path.append(part)
    return tuple(path)


def _unwrap(annotation: Any) -> list[Any]:
    """Model classes reachable through Optional/Union/Annotated/list/dict wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, dict):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found.extend(_unwrap(arg))
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _field_names(model: type[BaseModel], loc: PathKey) -> list[str]:
    """Field names of the model found at `loc` (for "did you mean" suggestions)."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for cls in current:
            info = cls.model_fields.get(part)
            if info is not None:
                nxt.extend(_unwrap(info.annotation))
        current = nxt
    return sorted({name for cls in current for name in cls.model_fields})


def _suggest(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            match = [lowered[word.lower()]]
    return f'; did you mean "{match[0]}"?' if match else ""


def _message(error: ErrorDetails, model: type[BaseModel], path: PathKey) -> tuple[str, str]:
    """(code, message) for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx", {}) or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        return "unknown-field", f'unknown field "{key}"' + _suggest(
            key, _field_names(model, path[:-1])
        )
    if kind == "missing":
        return "missing-field", f'missing required field "{path[-1]}"'
    if kind in {"int_type", "int_parsing"}:
        return "wrong-type", f"expected an integer, got {type_name(value)} {_show(value)}"
    if kind in {"float_type", "float_parsing", "finite_number"}:
        return "wrong-type", f"expected a number, got {type_name(value)} {_show(value)}"
    if kind == "bool_type":
        return "wrong-type", f"expected true or false, got {type_name(value)} {_show(value)}"
    if kind == "string_type":
        return "wrong-type", f"expected a string, got {type_name(value)} {_show(value)}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "wrong-type", f"expected a mapping, got {type_name(value)} {_show(value)}"
    if kind == "list_type":
        return "wrong-type", f"expected a list, got {type_name(value)} {_show(value)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        suggestion = ""
        if isinstance(value, str):
            options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",")]
            suggestion = _suggest(value, [o for o in options if o])
        return "invalid-value", f"expected {expected}, got {_show(value)}{suggestion}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        hint = _PATTERN_HINTS.get(pattern, f"does not match the expected format {pattern}")
        return "bad-format", f"{_show(value)} {hint}"
    if kind in {"string_too_long", "too_long"}:
        size = len(value) if isinstance(value, str | list | dict) else "?"
        limit = ctx.get("max_length")
        return "too-long", f"has length {size}; the limit is {limit}"
    if kind in {"string_too_short", "too_short"}:
        return "too-short", f"must have at least {ctx.get('min_length')} item(s) or character(s)"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        return "out-of-range", f"must be {op} {ctx.get(key)}, got {_show(value)}"
    if kind == "value_error":
        return "invalid-combination", str(error["msg"]).removeprefix("Value error, ")
    return kind.replace("_", "-"), str(error["msg"])


def _diagnose(document: Document, model: type[BaseModel], err: ValidationError) -> list[Diagnostic]:
    by_path: dict[PathKey, list[tuple[str, str]]] = {}
    for error in err.errors(include_url=False):
        path = _data_path(document.data, tuple(error["loc"]))
        by_path.setdefault(path, []).append(_message(error, model, path))
    out: list[Diagnostic] = []
    for path, found in by_path.items():
        codes = sorted({code for code, _ in found})
        code = codes[0] if len(codes) == 1 else "wrong-type"
        messages = list(dict.fromkeys(message for _, message in found))
        is_key = code in {"unknown-field", "missing-field"}
        pos = document.source_map.locate(path[:-1] if code == "missing-field" else path, key=is_key)
        out.append(
            Diagnostic(
                document.path, pos.line, pos.column, code, _dotted(path), "; or ".join(messages)
            )
        )
    return out


def credential_diagnostics(document: Document) -> list[Diagnostic]:
    """Errors for credential-looking strings anywhere in the document."""
    out = []
    for path, what in find_credentials(document.data):
        pos = document.source_map.locate(path)
        out.append(
            Diagnostic(
                document.path, pos.line, pos.column, "inline-credential", _dotted(path),
                f"looks like {what}; specs must reference a Secret instead of holding values",
            )
        )
    return out


def check_document(document: Document) -> tuple[SpecModel | None, list[Diagnostic]]:
    """Validate one document against the model its `kind` names."""
    diagnostics = credential_diagnostics(document)
    kind = document.data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        pos = document.source_map.locate(("kind",) if "kind" in document.data else ())
        hint = _suggest(kind, _KINDS) if isinstance(kind, str) else ""
        message = (
            f"unknown kind {_show(kind)}; expected PipelineRun or Environment{hint}"
            if kind is not None
            else 'missing field "kind" (PipelineRun or Environment)'
        )
        return None, [
            *diagnostics,
            Diagnostic(document.path, pos.line, pos.column, "unknown-kind", "kind", message),
        ]
    try:
        parsed = model.model_validate(document.data)
    except ValidationError as err:
        return None, diagnostics + _diagnose(document, model, err)
    return (parsed if not diagnostics else None), diagnostics


def check_run_against_environment(
    document: Document, run: PipelineRun, environment: Environment
) -> list[Diagnostic]:
    """Rules that need both the run and its cluster profile."""
    out: list[Diagnostic] = []

    def add(path: PathKey, message: str) -> None:
        pos = document.source_map.locate(path)
        out.append(
            Diagnostic(
                document.path, pos.line, pos.column, "invalid-combination", _dotted(path), message
            )
        )

    training = run.spec.training
    env = environment.spec
    if env.gpu.perNode and training.nprocPerNode > env.gpu.perNode:
        add(
            ("spec", "training", "nprocPerNode"),
            f"nprocPerNode ({training.nprocPerNode}) exceeds the {env.gpu.perNode} GPUs per node "
            f'of environment "{environment.metadata.name}"',
        )
    if training.nnodes > 1 and env.storage.accessMode == "ReadWriteOnce":
        add(
            ("spec", "training", "nnodes"),
            f"nnodes is {training.nnodes} but environment \"{environment.metadata.name}\" has "
            "ReadWriteOnce storage, which pods on several nodes cannot share",
        )
    if env.gpu.perNode and env.resources.evalGpus > env.gpu.perNode:
        add(("spec", "environment"), "the environment asks more evaluation GPUs than a node has")
    return out
