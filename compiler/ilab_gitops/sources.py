"""Read YAML specs safely and keep a source map beside the data.

Specs are parsed with the YAML 1.2 core schema (no `yes`/`no` booleans, `2e-5` is a float,
`010` is ten) on top of PyYAML's parser, so every value keeps the line and column it came
from. Hostile input fails fast with a located error: a first pass over the parser's events
enforces limits on nesting depth and on the number of values after alias expansion (a
"billion laughs" document stops at the alias that would blow it up) before anything is
composed; explicit tags other than the core ones are refused.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import yaml

from ilab_gitops.diagnostics import Diagnostic

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_STRING_CHARS = 16 * 1024

PathKey = tuple[str | int, ...]

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


class Mark(Protocol):
    """What a position needs from a PyYAML mark (pure-Python and C marks alike)."""

    @property
    def index(self) -> int: ...  # characters from the start of the text


def quote(text: str, limit: int = 60) -> str:
    """`text` in double quotes for a one-line message: escaped, and cut to `limit` characters."""
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return json.dumps(shown, ensure_ascii=False)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(path: PathKey) -> str:
    """`spec.tolerations[0].key`; keys that are not plain words are quoted: `spec["a b"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{quote(part, 40)}]"
    return out


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Source:
    """The text being read: positions as editors count them, and errors located in it.

    PyYAML's own line numbers also break lines at U+0085, U+2028 and U+2029 (YAML 1.1);
    editors and GitHub do not, so positions are computed from each mark's character index.
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    def position(self, index: int) -> Position:
        line = bisect.bisect_right(self.starts, index)
        return Position(line, index - self.starts[line - 1] + 1)

    def at(self, mark: Mark | None) -> Position:
        return self.position(mark.index) if mark is not None else Position(1, 1)

    def char_at(self, mark: Mark | None) -> str:
        return self.text[mark.index] if mark is not None and mark.index < len(self.text) else ""

    def error(self, mark: Mark | None, code: str, message: str, where: PathKey = ()) -> LoadError:
        return self.error_at(self.at(mark), code, message, where)

    def error_at(self, pos: Position, code: str, message: str, where: PathKey = ()) -> LoadError:
        return LoadError(Diagnostic(self.path, pos.line, pos.column, code, dotted(where), message))


# --------------------------------------------------------------------------- first pass


@dataclass
class _Frame:
    """An open collection during the event scan."""

    path: PathKey
    anchor: str | None
    mapping: bool
    size: int = 1  # values in this collection after alias expansion, itself included
    children: int = 0  # keys and values (mapping) or items (sequence) seen so far
    key: str = ""  # the last key read (mapping)


class _Scanner:
    """Walks the event stream once: limits, aliases and document count, nothing composed."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.stack: list[_Frame] = []
        self.sizes: dict[str, int] = {}  # anchor -> values it expands to
        self.anchored_at: dict[str, Mark | None] = {}
        self.total = 0
        self.documents = 0
        self.document_start: Mark | None = None

    def scan(self, loader: yaml.SafeLoader) -> None:
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                self.document_start = event.start_mark
            elif isinstance(event, yaml.CollectionEndEvent):
                done = self.stack.pop()
                if done.anchor is not None:
                    self.sizes[done.anchor] = done.size
                self._child(done.size)
            elif isinstance(event, yaml.NodeEvent):
                self._node(event)

    def _child(self, size: int, key: str | None = None) -> None:
        if self.stack:
            parent = self.stack[-1]
            parent.size += size
            parent.children += 1
            if key is not None:
                parent.key = key

    def _where(self) -> tuple[PathKey, bool]:
        """Path of the node about to start, and whether it is a mapping key."""
        if not self.stack:
            return (), False
        parent = self.stack[-1]
        if parent.mapping:
            if parent.children % 2 == 0:
                return parent.path, True
            return (*parent.path, parent.key), False
        return (*parent.path, parent.children), False

    def _node(self, event: yaml.NodeEvent) -> None:
        if self.documents > 1 and not self.stack and not _is_empty(event):
            raise self.source.error(
                self.document_start,
                "multiple-documents",
                "a second YAML document starts here; put one spec in each file",
            )
        where, is_key = self._where()
        size = 1
        if isinstance(event, yaml.AliasEvent):
            size = self._alias(event, where)
        self.total += size
        if self.total > MAX_NODES:
            message = (
                f'alias "*{event.anchor}" expands to {size} values, taking the document past '
                f"the limit of {MAX_NODES}"
                if isinstance(event, yaml.AliasEvent)
                else f"document holds more than {MAX_NODES} keys and values"
            )
            raise self.source.error(event.start_mark, "too-many-nodes", message, where)
        anchor = getattr(event, "anchor", None)
        if anchor is not None and not isinstance(event, yaml.AliasEvent):
            if anchor in self.anchored_at:
                first = self.source.at(self.anchored_at[anchor])
                raise self.source.error(
                    event.start_mark,
                    "yaml-alias",
                    f'anchor "&{anchor}" is already defined at line {first.line}; '
                    "give each anchor its own name",
                    where,
                )
            self.anchored_at[anchor] = event.start_mark
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.stack) >= MAX_DEPTH:
                raise self.source.error(
                    event.start_mark,
                    "too-deep",
                    f"more than {MAX_DEPTH} levels of nested mappings and lists",
                )
            mapping = isinstance(event, yaml.MappingStartEvent)
            self.stack.append(_Frame(where if not is_key else (), anchor, mapping))
            return
        if isinstance(event, yaml.ScalarEvent) and anchor is not None:
            self.sizes[anchor] = 1
        key = event.value if is_key and isinstance(event, yaml.ScalarEvent) else None
        self._child(size, key)

    def _alias(self, event: yaml.AliasEvent, where: PathKey) -> int:
        name = event.anchor
        if any(frame.anchor == name for frame in self.stack):
            raise self.source.error(
                event.start_mark,
                "yaml-alias",
                f'alias "*{name}" refers to a collection that contains it',
                where,
            )
        if name not in self.sizes:
            raise self.source.error(
                event.start_mark,
                "yaml-alias",
                f'alias "*{name}" is not defined; an anchor "&{name}" must come before it',
                where,
            )
        return self.sizes[name]


def _is_empty(event: yaml.NodeEvent) -> bool:
    """An empty document (a lone `---` at the end of a file) holds one empty plain scalar."""
    return (
        isinstance(event, yaml.ScalarEvent)
        and event.value == ""
        and event.tag is None
        and not event.style
    )


# --------------------------------------------------------------------------- syntax errors


def _reader_error(source: _Source, err: yaml.reader.ReaderError) -> LoadError:
    """A character YAML does not allow; the C reader counts its position in UTF-8 bytes."""
    index = len(source.text.encode("utf-8")[: err.position].decode("utf-8", "ignore"))
    char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
    return source.error_at(
        source.position(index), "yaml-syntax", f"{err.reason}: found U+{char:04X}; remove it"
    )


def _syntax_error(source: _Source, err: yaml.YAMLError) -> LoadError:
    if isinstance(err, yaml.reader.ReaderError):
        return _reader_error(source, err)
    problem_mark = getattr(err, "problem_mark", None)
    context_mark = getattr(err, "context_mark", None)
    mark = problem_mark or context_mark
    problem = str(getattr(err, "problem", None) or err)
    context = str(getattr(err, "context", None) or "")
    start = source.at(context_mark)
    at = f"line {start.line}, column {start.column}"
    char = source.char_at(mark)
    if "maximum nesting depth" in problem:
        # libyaml >= 0.2.6 (PyYAML 6.0.3+ wheels) stops at its own depth limit while it reads
        # ahead of our event scan: report it as the same limit, not as a syntax error.
        return source.error(
            mark, "too-deep", f"more than {MAX_DEPTH} levels of nested mappings and lists"
        )
    if char == "\t" or "tab character" in problem:
        return source.error(
            mark, "yaml-tab", "tab character; YAML must be indented with spaces, not tabs"
        )
    friendly = {
        "did not find expected key": (
            f"expected a key of the mapping that starts at {at}; check the indentation of this line"
        ),
        "mapping values are not allowed in this context": (
            'unexpected ":"; is this line indented too deep, or does the line above lack its '
            '":"? (quote values that contain ": ")'
        ),
        "did not find expected ',' or '}'": f'expected "," or "}}": the "{{" at {at} is not closed',
        "did not find expected ',' or ']'": f'expected "," or "]": the "[" at {at} is not closed',
        "could not find expected ':'": f'missing ":" after the key that starts at {at}',
        "found unknown escape character": (
            'unknown escape sequence in a double-quoted string; use single quotes, or write "\\\\"'
        ),
        "did not find expected node content": f'expected a value, found "{char}"',
    }
    if problem in friendly:
        message = friendly[problem]
    elif "found unexpected end of stream" in problem and "quoted scalar" in context:
        message = f"the quoted string that starts at {at} is never closed"
    elif "cannot start any token" in problem and char:
        message = f'"{char}" cannot start a value; put the value in quotes'
    else:
        message = f"{context}: {problem}" if context else problem
    return source.error(mark, "yaml-syntax", " ".join(message.split()))  # always one line


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


def _scan(source: _Source, loader: yaml.SafeLoader) -> None:
    """The first pass (limits, aliases, document count); a syntax error becomes a diagnostic."""
    try:
        _Scanner(source).scan(loader)
    except yaml.YAMLError as err:
        if "maximum nesting depth" in str(err) and not isinstance(loader, yaml.SafeLoader):
            # libyaml >= 0.2.6 reads ahead and stops at its own depth limit before our scan
            # sees the 33rd level: scan again with PyYAML's own parser (no such limit, and it
            # stops at ours), so the diagnostic is the same whatever PyYAML build runs.
            _scan(source, yaml.SafeLoader(source.text))
        raise _syntax_error(source, err) from None
    finally:
        loader.dispose()


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
