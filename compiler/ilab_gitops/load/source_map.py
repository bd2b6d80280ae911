"""Where each value of a spec came from: positions, the source map, located load errors.

Shared by the YAML scan (limits, syntax errors) and the builder; nothing here parses.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ilab_gitops.diagnostics import Diagnostic

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_STRING_CHARS = 16 * 1024

PathKey = tuple[str | int, ...]


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


class Source:
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
