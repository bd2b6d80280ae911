"""Read YAML specs safely and keep a source map beside the data.

Specs are parsed with the YAML 1.2 core schema (no `yes`/`no` booleans, `2e-5` is a float,
`010` is ten) on top of PyYAML's parser, so every value keeps the line and column it came
from. Hostile input fails fast with a located error: a first pass over the parser's events
enforces limits on nesting depth and on the number of values after alias expansion (a
"billion laughs" document stops at the alias that would blow it up) before anything is
composed; explicit tags other than the core ones are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import yaml

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.load.source_map import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_STRING_CHARS,
    Document,
    LoadError,
    Mark,
    PathKey,
    Position,
    SourceMap,
    dotted,
    quote,
)
from ilab_gitops.load.source_map import Source as _Source
from ilab_gitops.load.yaml_scan import _scan, _syntax_error

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_STRING_CHARS",
    "Document",
    "LoadError",
    "Mark",
    "PathKey",
    "Position",
    "SourceMap",
    "dotted",
    "parse_yaml",
    "quote",
]

try:  # The C parser is faster; both give the same events, nodes and marks.
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
STR, NULL, BOOL, INT, FLOAT = (f"{_TAG}{t}" for t in ("str", "null", "bool", "int", "float"))
MAP, SEQ = f"{_TAG}map", f"{_TAG}seq"


class _CoreSchemaLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML loader resolving plain scalars by the YAML 1.2 core schema.

    The resolver table is a private copy on this subclass: PyYAML itself is left untouched.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}


def _add(tag: str, pattern: str, first: list[str]) -> None:
    _CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern, re.X), first)


# `first` lists the characters a match can start with; "" stands for the empty scalar.
_add(BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF"))
_add(NULL, r"^(?:~|null|Null|NULL|)$", [*"~nN", ""])
_add(INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789"))
_add(
    FLOAT,
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    list("-+0123456789."),
)


# --------------------------------------------------------------------------- building data


def _core_scalar(tag: str, value: str) -> Any:
    """Construct a plain scalar the way the YAML 1.2 core schema reads it."""
    if tag == NULL:
        return None
    if tag == BOOL:
        return value.lower() == "true"
    if tag == INT:
        if value.startswith(("0o", "0x")):
            return int(value[2:], 8 if value[1] == "o" else 16)
        return int(value, 10)
    if tag == FLOAT:
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return float(value)
    return value


class _Builder:
    """Turns a composed node tree into plain data, recording positions."""

    def __init__(self, source: _Source, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader
        self.source_map = SourceMap()

    def fail(self, node: yaml.Node, code: str, message: str, where: PathKey = ()) -> LoadError:
        return self.source.error(node.start_mark, code, message, where)

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        """Data of `node`, found at `path` inside `depth` enclosing collections."""
        self.source_map.values[path] = self.source.at(node.start_mark)
        if isinstance(node, yaml.CollectionNode) and depth >= MAX_DEPTH:
            # Reachable only through aliases: the scan has checked the nesting as written.
            raise self.fail(
                node, "too-deep", f"more than {MAX_DEPTH} levels of nested mappings and lists"
            )
        if isinstance(node, yaml.MappingNode):
            self._expect_tag(node, MAP, path)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._expect_tag(node, SEQ, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _expect_tag(self, node: yaml.Node, tag: str, path: PathKey) -> None:
        if node.tag != tag:
            raise self.fail(
                node,
                "unsupported-tag",
                f'YAML tag "{_short_tag(node.tag)}" is not supported; specs hold plain values',
                path,
            )

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "bad-key", "mapping keys must be plain strings", path)
            if key_node.value == "<<" and not key_node.style:
                raise self.fail(
                    key_node,
                    "bad-key",
                    'merge keys ("<<") are not supported; write each value out',
                    path,
                )
            key = self._string(key_node, str(key_node.value), path)
            if key in result:
                first = self.source_map.keys[(*path, key)]
                raise self.fail(
                    key_node,
                    "duplicate-key",
                    f"duplicate key {quote(key)} (first defined at line {first.line})",
                    (*path, key),
                )
            self.source_map.keys[(*path, key)] = self.source.at(key_node.start_mark)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _string(self, node: yaml.Node, value: str, path: PathKey) -> str:
        if len(value) > MAX_STRING_CHARS:
            raise self.fail(
                node,
                "string-too-long",
                f"string of {len(value)} characters exceeds the limit of {MAX_STRING_CHARS}",
                path,
            )
        return value

    def _scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        value = self._string(node, str(node.value), path)
        implied = STR
        if not node.style:  # plain: what the value would resolve to without an explicit tag
            implied = self.loader.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, value, (True, False)
            )
        if node.tag == implied == INT and not _fits_64_bits(value):
            raise self.fail(
                node,
                "number-too-large",
                f"integer {quote(value, 30)} is too large; numbers in a spec fit in 64 bits",
                path,
            )
        if node.tag in (implied, STR):
            return _core_scalar(node.tag, value)
        if node.tag == FLOAT and implied == INT:  # `!!float 1` is 1.0
            return float(value)
        raise self.fail(
            node,
            "unsupported-tag",
            f'YAML tag "{_short_tag(node.tag)}" does not fit the value {quote(value)}'
            if node.tag in (NULL, BOOL, INT, FLOAT)
            else f'YAML tag "{_short_tag(node.tag)}" is not supported; specs hold plain values',
            path,
        )


def _fits_64_bits(value: str) -> bool:
    """Whether an integer literal is below 2**64 (checked before Python converts it: huge
    decimal literals take quadratic time, and past 4300 digits Python refuses them)."""
    if len(value) > 24:  # "-0o" and 22 octal digits is the longest literal that can fit
        return False
    return abs(int(_core_scalar(INT, value))) < 2**64


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


# --------------------------------------------------------------------------- entry point


def _decode(raw: bytes, path: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        before = _Source(path, raw[: err.start].decode("utf-8", "replace"))
        raise before.error_at(
            before.position(len(before.text)),
            "not-utf8",
            f"byte 0x{raw[err.start]:02x} is not valid UTF-8; save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def parse_yaml(raw: bytes, path: str) -> Document:
    """Parse one YAML document holding a mapping, or raise `LoadError` with a located diagnostic."""
    if len(raw) > MAX_FILE_BYTES:
        raise LoadError(
            Diagnostic(
                path,
                1,
                1,
                "file-too-large",
                "",
                f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES} bytes",
            )
        )
    text = _decode(raw, path)
    if not text.strip():
        raise LoadError(
            Diagnostic(path, 1, 1, "empty-file", "", "file is empty; expected one YAML mapping")
        )
    source = _Source(path, text)
    _scan(source, _CoreSchemaLoader(text))
    loader = _CoreSchemaLoader(text)
    try:
        # The scan has checked the limits: composing is bounded now.
        node = loader.get_node() if loader.check_node() else None
        builder = _Builder(source, loader)
        if node is None:
            raise LoadError(
                Diagnostic(
                    path,
                    1,
                    1,
                    "empty-file",
                    "",
                    "file holds only comments; expected one YAML mapping",
                )
            )
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL:
            raise builder.fail(
                node, "empty-file", "the document is empty (null); expected one YAML mapping"
            )
        if not isinstance(node, yaml.MappingNode):
            found = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            raise builder.fail(
                node,
                "not-a-mapping",
                f"the document is {found}; expected a mapping (key: value) "
                "holding one PipelineRun or Environment",
            )
        data = builder.build(node, (), 0)
    except yaml.YAMLError as err:  # pragma: no cover - the scan has seen every event already
        raise _syntax_error(source, err) from None
    finally:
        loader.dispose()
    return Document(path=path, data=data, source_map=builder.source_map)
