"""Field-level differences between two JSON-like values, for saying *why* a step re-runs.

Both sides are `model_dump(mode="json")` output, so defaults are filled in: a field written
out with its default value and a field left out compare equal, and only real setting changes
show up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PathKey = tuple[str | int, ...]


class _Missing:
    """Marks a side on which a field does not exist (added or removed keys)."""

    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class FieldChange:
    """One changed leaf (or a whole list/mapping added or removed), by path from the root."""

    path: PathKey
    old: Any
    new: Any

    @property
    def dotted(self) -> str:
        return dotted(self.path)


def dotted(path: PathKey) -> str:
    """`spec.training.skills.learningRate`, `spec.taxonomy.pullRequests[2]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """Every differing leaf between `old` and `new`, in a stable (sorted-path) order.

    Lists of equal length are compared item by item so a changed pull request number is named
    precisely; lists of different length are reported as one change of the whole list.
    """
    return list(_walk((), old, new))


def _walk(path: PathKey, old: Any, new: Any) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _walk((*path, key), old.get(key, MISSING), new.get(key, MISSING))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _walk((*path, index), a, b)
    elif not _same(old, new):
        yield FieldChange(path, old, new)


def _same(old: Any, new: Any) -> bool:
    # 1 and 1.0 or True and 1 are different settings in a spec; compare types too.
    return type(old) is type(new) and old == new


def show_value(value: Any, limit: int = 60) -> str:
    """A short, one-line rendering of a JSON value for messages and PR comments."""
    if value is MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decreased_attempts(changes: list[FieldChange]) -> list[FieldChange]:
    """Changes that lower an `attempt` counter (absent counts as 0, the default)."""
    out = []
    for change in changes:
        if not change.path or change.path[-1] != "attempt":
            continue
        old = 0 if change.old is MISSING else change.old
        new = 0 if change.new is MISSING else change.new
        if isinstance(old, int) and isinstance(new, int) and new < old:
            out.append(change)
    return out
