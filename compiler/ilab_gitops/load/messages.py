"""Pydantic's validation errors in words for people who write YAML, at file:line:col.

What each string pattern means, which field was meant ("did you mean"), what was expected and
what was found; rules of model validators are placed at the field they name. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.load.sources import Document, PathKey, dotted, quote
from ilab_gitops.spec import base, environment, pipeline_run
from ilab_gitops.spec.credentials import looks_like_credential

_BRANCH_WORDS = (
    "must be a branch name: '/'-separated parts of letters, digits, '_', '-' and single dots, "
    "none starting with '-' or '.'"
)
#: What each string pattern of the spec means, in words (a test checks none is missing).
_HINT_SOURCES: tuple[tuple[object, str], ...] = (
    (
        base.DNS1035_PATTERN,
        "must be a DNS-1035 label: lowercase letters, digits and '-', "
        "starting with a letter and ending with a letter or digit",
    ),
    (
        base.DNS1123_PATTERN,
        "must be a DNS label: lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
    ),
    (base.SecretKey, "must be a key made of letters, digits, '-', '_' and '.'"),
    (pipeline_run.GitCommit, "must be a full 40-character lowercase hex commit sha"),
    (pipeline_run.Sha256, "must be 64 lowercase hex characters (a sha256 digest)"),
    (pipeline_run.ObjectKey, "must be an object key without whitespace, not starting with '/'"),
    (pipeline_run.Quantity, "must be a Kubernetes quantity such as 500m, 4, 16Gi or 2Ti"),
    (pipeline_run.ParameterCount, "must be a parameter count such as 8B, 7.2B or 350M"),
    (
        (pipeline_run.HuggingFaceModelSource, "repo"),
        'must be a Hugging Face repository id, "owner/name"',
    ),
    (
        (pipeline_run.PvcModelSource, "path"),
        "must be a relative path without whitespace or '..' segments",
    ),
    ((pipeline_run.Taxonomy, "repoUrl"), "must be an https:// URL without spaces or credentials"),
    (
        (pipeline_run.FinalEval, "taxonomyBaseBranch"),
        _BRANCH_WORDS,
    ),
    (
        (pipeline_run.SdgGenerate, "taxonomyBaseBranch"),
        _BRANCH_WORDS,
    ),
    (
        (pipeline_run.HuggingFacePublish, "revision"),
        "must be a branch name made of letters, digits, '_', '.' and '-' (at most 100 characters)",
    ),
    (
        environment.IMAGE_RE,
        "must be an image reference such as quay.io/org/name:tag@sha256:<64 hex digits>",
    ),
    (environment.LabelKey, "must be a label key such as example.com/name"),
    (
        environment.LabelValue,
        "must be a label value: letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit",
    ),
    (environment.Duration, "must be a duration such as 90s, 5m or 1h30m"),
    (
        (environment.Flux, "renderedPath"),
        "must be a relative path made of letters, digits, '_', '.' and '-'",
    ),
)


def _pattern_of(source: object) -> str | None:
    """The regex of a pattern string, an `Annotated` string type, or a `(model, field)` pair."""
    if isinstance(source, str):
        return source
    if isinstance(source, tuple):
        model, name = source
        info = model.model_fields.get(name)
        metadata: Iterable[object] = info.metadata if info is not None else ()
    else:
        metadata = typing.get_args(source)[1:]
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


@functools.cache
def pattern_hints() -> dict[str, str]:
    """Pattern -> hint, read from the spec types so the two cannot drift apart."""
    hints: dict[str, str] = {}
    for source, hint in _HINT_SOURCES:
        pattern = _pattern_of(source)
        if pattern is not None:
            hints.setdefault(pattern, hint)
    return hints


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}.get(
        type(value), type(value).__name__
    )


def show(value: object) -> str:
    """A value as it appears in messages: strings quoted, escaped, and cut at 60 characters."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict | list):
        return "a " + type_name(value)
    return repr(value).lower() if isinstance(value, bool) else repr(value)


def got(value: object) -> str:
    if value is None:
        return "got null"
    if isinstance(value, dict | list):
        return f"got {show(value)}"
    return f"got {type_name(value)} {show(value)}"


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def lookup(data: Any, path: PathKey) -> tuple[bool, Any]:
    """(True, value) when the file sets `path`, else (False, None)."""
    node = data
    for part in path:
        if not _has(node, part):
            return False, None
        node = node[part]
    return True, node


def _data_path(data: Any, loc: tuple[int | str, ...]) -> PathKey:
    """The longest prefix of a pydantic location that exists in the data (drops union tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if not _has(node, part):
            if isinstance(node, dict) and isinstance(part, str) and len(path) == len(loc) - 1:
                path.append(part)  # a missing or unknown key: keep it for the message
            break
        node = node[part]
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


def _closest(word: str, choices: Iterable[str]) -> str | None:
    options = list(choices)
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    longer = [c for c in options if c.lower().startswith(word.lower()) and len(word) >= 3]
    return longer[0] if len(longer) == 1 else None


def suggest(word: str, choices: Iterable[str]) -> str:
    match = _closest(word, choices)
    return f'; did you mean "{match}"?' if match else ""


def _options(ctx: dict[str, Any]) -> list[str]:
    """The allowed values of a literal_error, from pydantic's "'a', 'b' or 'c'"."""
    return re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))


def _quoted_list(options: list[str]) -> str:
    shown = [f'"{o}"' for o in options]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _expected(error: ErrorDetails) -> str | None:
    """What one error expected, as a phrase (used to merge the branches of a union)."""
    kind = error["type"]
    ctx = error.get("ctx", {}) or {}
    if kind == "literal_error" and _options(ctx):
        return _quoted_list(_options(ctx))
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return f"a number {op} {ctx.get(key)}"
    return _EXPECTED.get(kind)


def _message(error: ErrorDetails, model: type[BaseModel], path: PathKey) -> tuple[str, str]:
    """(code, message) for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx", {}) or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        return "unknown-field", f"unknown field {show(key)}" + suggest(
            key, _field_names(model, path[:-1])
        )
    if kind == "missing":
        return "missing-field", f'missing required field "{path[-1]}"'
    if kind in _EXPECTED:
        return "wrong-type", f"expected {_EXPECTED[kind]}, {got(value)}"
    if kind == "literal_error":
        options = _options(ctx)
        expected = _quoted_list(options) if options else str(ctx.get("expected", ""))
        if len(options) > 2:
            expected = "one of " + expected
        extra = ""
        if isinstance(value, str):
            extra = suggest(value, options) if len(options) > 1 else ""
        elif isinstance(value, int | float) and not isinstance(value, bool):
            extra = "; write it in quotes so YAML reads it as text"
        return "invalid-value", f"expected {expected}, {got(value)}{extra}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        hint = pattern_hints().get(pattern, f"does not match the expected format {pattern}")
        return "bad-format", f"{show(value)} {hint}"
    if kind in {"string_too_long", "too_long"}:
        limit = ctx.get("max_length")
        if isinstance(value, str):
            return "too-long", f"{show(value)} is {len(value)} characters; the limit is {limit}"
        size = len(value) if isinstance(value, list | dict) else "?"
        return "too-long", f"has {size} items; the limit is {limit}"
    if kind in {"string_too_short", "too_short"}:
        least = ctx.get("min_length")
        if isinstance(value, str):
            return "too-short", "must not be empty" if least == 1 else f"needs {least} characters"
        return "too-short", f"needs at least {least} item(s)"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return "out-of-range", f"must be {op} {ctx.get(key)}, got {show(value)}"
    if kind == "value_error":
        return "invalid-combination", str(error["msg"]).removeprefix("Value error, ")
    return kind.replace("_", "-"), str(error["msg"])


_LEADING_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*")


def _rule_path(data: Any, path: PathKey, message: str) -> PathKey:
    """A model rule is located at the field its message starts with, when the file sets it."""
    match = _LEADING_FIELD.match(message)
    if match is None:
        return path
    candidate = (*path, *match.group().split("."))
    found, _ = lookup(data, candidate)
    return candidate if found else path


@dataclass(frozen=True)
class _Finding:
    path: PathKey
    code: str
    message: str
    expected: str | None
    value: object
    about_key: bool = False  # the error is about a mapping key (dict keys are validated too)


def _findings(document: Document, model: type[BaseModel], err: ValidationError) -> list[_Finding]:
    out: list[_Finding] = []
    for error in err.errors(include_url=False):
        path = _data_path(document.data, tuple(error["loc"]))
        code, message = _message(error, model, path)
        if code == "invalid-combination":
            path = _rule_path(document.data, path, message)
        about_key = error["loc"][-1:] == ("[key]",)
        out.append(_Finding(path, code, message, _expected(error), error.get("input"), about_key))
    # `epoch` for `epochs`: the unknown field's suggestion explains the missing one.
    suggested = {
        (f.path[:-1], _closest(str(f.path[-1]), _field_names(model, f.path[:-1])))
        for f in out
        if f.code == "unknown-field"
    }
    return [
        f for f in out if not (f.code == "missing-field" and (f.path[:-1], f.path[-1]) in suggested)
    ]


def _merge(found: list[_Finding]) -> tuple[str, str]:
    """One (code, message) for all findings at one path (the branches of a union)."""
    codes = {f.code for f in found}
    if len(found) > 1 and all(f.expected for f in found):
        expected = " or ".join(dict.fromkeys(str(f.expected) for f in found))
        code = codes.pop() if len(codes) == 1 else "invalid-value"
        return code, f"expected {expected}, {got(found[0].value)}"
    code = codes.pop() if len(codes) == 1 else "wrong-type"
    return code, "; or ".join(dict.fromkeys(f.message for f in found))


def diagnose(
    document: Document,
    model: type[BaseModel],
    err: ValidationError,
    secret_paths: set[PathKey],
) -> list[Diagnostic]:
    by_path: dict[PathKey, list[_Finding]] = {}
    for finding in _findings(document, model, err):
        by_path.setdefault(finding.path, []).append(finding)
    out: list[Diagnostic] = []
    for path, everything in by_path.items():
        found = everything
        if path in secret_paths:
            # Only a message naming the key may stay, and only when the key is no secret.
            found = [
                f
                for f in everything
                if f.code in {"unknown-field", "missing-field"}
                and not (path and looks_like_credential(str(path[-1])))
            ]
            if not found:
                continue
        code, message = _merge(found)
        out.append(located(document, path, code, message, about_key=found[0].about_key))
    return out


def field_path(path: PathKey) -> str:
    """The dotted path shown in messages, with keys that look like credentials redacted."""
    return dotted(
        tuple(
            "<redacted>" if isinstance(part, str) and looks_like_credential(part) else part
            for part in path
        )
    )


def located(
    document: Document, path: PathKey, code: str, message: str, *, about_key: bool = False
) -> Diagnostic:
    """A diagnostic at the key (unknown/missing fields, rules about a whole mapping) or value."""
    probe = path[:-1] if code == "missing-field" else path
    found, value = lookup(document.data, path)
    at_key = (
        about_key
        or code in {"unknown-field", "missing-field"}
        or not found  # a default the rule complains about: point at the nearest key
        or (code == "invalid-combination" and isinstance(value, dict | list))
    )
    pos = document.source_map.locate(probe, key=at_key)
    return Diagnostic(document.path, pos.line, pos.column, code, field_path(path), message)
