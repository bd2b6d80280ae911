"""The first pass over a spec's YAML events: input limits and syntax errors, nothing composed.

Hostile input fails here, before anything grows with it: nesting depth, the number of values
after alias expansion (a "billion laughs" document stops at the alias that would blow it up),
one document per file; PyYAML's errors become one-line, located diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ilab_gitops.load.source_map import MAX_DEPTH, MAX_NODES, LoadError, Mark, PathKey, Source

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

    def __init__(self, source: Source) -> None:
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


def _reader_error(source: Source, err: yaml.reader.ReaderError) -> LoadError:
    """A character YAML does not allow; the C reader counts its position in UTF-8 bytes."""
    index = len(source.text.encode("utf-8")[: err.position].decode("utf-8", "ignore"))
    char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
    return source.error_at(
        source.position(index), "yaml-syntax", f"{err.reason}: found U+{char:04X}; remove it"
    )


def _syntax_error(source: Source, err: yaml.YAMLError) -> LoadError:
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


def _scan(source: Source, loader: yaml.SafeLoader) -> None:
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
