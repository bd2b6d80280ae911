"""Read YAML specs safely and keep a source map beside the data.

Specs are parsed with the YAML 1.2 core schema (no `yes`/`no` booleans, `2e-5` is a float)
on top of PyYAML's composer, so every value keeps the line and column it came from. Limits on
size, nesting depth and alias expansion make hostile input fail fast with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ilab_gitops.diagnostics import Diagnostic

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_STRING_CHARS = 16 * 1024

PathKey = tuple[str | int, ...]

try:  # The C parser is faster; both give the same nodes and marks.
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader


class _CoreSchemaLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML loader resolving plain scalars by the YAML 1.2 core schema.

    The resolver table is a private copy on this subclass: PyYAML itself is left untouched.
    """

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


def _add(tag: str, pattern: str, first: str) -> None:
    _CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_add("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_add("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN\0")
_add(
    "tag:yaml.org,2002:int",
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
    "-+0123456789",
)
_add(
    "tag:yaml.org,2002:float",
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    "-+0123456789.",
)


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Positions of values and keys, by path from the document root."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Position:
        """Best position for `path`: the exact node, else the nearest ancestor."""
        table = self.keys if key else self.values
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Position(1, 1))


@dataclass
class Document:
    """A parsed YAML file: data, its source map, and the path used in messages."""

    path: str
    data: Any
    source_map: SourceMap


class LoadError(Exception):
    """A file could not be read as one YAML mapping; carries the diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.as_text())
        self.diagnostic = diagnostic


def _pos(mark: yaml.Mark | None) -> Position:
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed node tree into plain data, recording positions and enforcing limits."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.source_map = SourceMap()
        self.nodes = 0
        self.constructor = _CoreSchemaLoader("")

    def fail(self, node: yaml.Node, code: str, message: str, field: str = "") -> LoadError:
        pos = _pos(node.start_mark)
        return LoadError(Diagnostic(self.path, pos.line, pos.column, code, field, message))

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node,
                "too-many-nodes",
                f"document expands to more than {MAX_NODES} values "
                "(alias expansion or a very large file)",
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, "too-deep", f"nesting deeper than {MAX_DEPTH} levels")
        self.source_map.values[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, "bad-key", "mapping keys must be plain strings")
            key = str(key_node.value)
            dotted = ".".join(str(p) for p in (*path, key))
            if key in result:
                first = self.source_map.keys[(*path, key)]
                raise self.fail(
                    key_node,
                    "duplicate-key",
                    f'duplicate key "{key}" (first defined at line {first.line})',
                    dotted,
                )
            self.source_map.keys[(*path, key)] = _pos(key_node.start_mark)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        value = node.value
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise self.fail(
                node,
                "string-too-long",
                f"string of {len(value)} characters exceeds the limit of {MAX_STRING_CHARS}",
                ".".join(str(p) for p in path),
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise self.fail(node, "yaml-value", str(err).splitlines()[0]) from None


def _syntax_error(path: str, err: yaml.YAMLError) -> LoadError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    pos = _pos(mark)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    if "\t" in text or "'\\t'" in text:
        text += " (tabs are not allowed for indentation; use spaces)"
    return LoadError(Diagnostic(path, pos.line, pos.column, "yaml-syntax", "", text))


def _first_non_utf8(raw: bytes, err: UnicodeDecodeError) -> Position:
    before = raw[: err.start]
    line = before.count(b"\n") + 1
    column = err.start - (before.rfind(b"\n") + 1) + 1
    return Position(line, column)


def parse_yaml(raw: bytes, path: str) -> Document:
    """Parse one YAML document holding a mapping, or raise `LoadError` with a located diagnostic."""
    if len(raw) > MAX_FILE_BYTES:
        raise LoadError(
            Diagnostic(
                path, 1, 1, "file-too-large",
                "", f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES} bytes",
            )
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        pos = _first_non_utf8(raw, err)
        raise LoadError(
            Diagnostic(path, pos.line, pos.column, "not-utf8", "", "file is not valid UTF-8")
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise LoadError(Diagnostic(path, 1, 1, "empty-file", "", "file has no YAML document"))
    loader = _CoreSchemaLoader(text)
    try:
        nodes = list(_compose_all(loader))
    except yaml.YAMLError as err:
        raise _syntax_error(path, err) from None
    finally:
        loader.dispose()
    if len(nodes) != 1:
        second = nodes[1] if len(nodes) > 1 else None
        pos = _pos(second.start_mark) if second is not None else Position(1, 1)
        raise LoadError(
            Diagnostic(
                path, pos.line, pos.column, "multiple-documents", "",
                f"file holds {len(nodes)} YAML documents; put one spec in each file",
            )
        )
    node = nodes[0]
    builder = _Builder(path)
    if not isinstance(node, yaml.MappingNode):
        raise builder.fail(node, "not-a-mapping", "the document must be a mapping (key: value)")
    data = builder.build(node, (), 0)
    return Document(path=path, data=data, source_map=builder.source_map)


def _compose_all(loader: yaml.SafeLoader) -> Iterator[yaml.Node]:
    while loader.check_node():
        node = loader.get_node()
        if node is not None:
            yield node
