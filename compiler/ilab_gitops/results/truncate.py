"""Fit a Markdown document under a size limit without cutting through its structure.

GitHub rejects comment bodies over 65,536 characters (release bodies over 125,000). We count
UTF-8 bytes, which are never fewer than characters or UTF-16 code units, so the limit holds
whichever way GitHub counts. Sections are dropped row by row from the end; the head, the
tail and a note saying what was left out are always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: GitHub's limit on issue/PR comment bodies, in characters.
GITHUB_COMMENT_LIMIT = 65_536
#: What we allow ourselves: safely below the limits, in UTF-8 bytes.
COMMENT_BUDGET = 60_000
RELEASE_BUDGET = 120_000  # GitHub's limit on release bodies: 125,000 characters


@dataclass(frozen=True)
class Section:
    """A heading block followed by rows; the heading is shown only with at least one row."""

    heading: str
    rows: Sequence[str]


@dataclass(frozen=True)
class Omitted:
    rows: int
    sections: int


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def fit(
    head: str,
    sections: Sequence[Section],
    tail: str,
    budget: int,
    note: Callable[[Omitted], str],
) -> str:
    """`head`, as many section rows as fit, the omission note (if any), then `tail`."""
    whole = _join(head, [s.heading + "".join(s.rows) for s in sections], tail)
    if size(whole) <= budget:
        return whole
    worst = note(Omitted(sum(len(s.rows) for s in sections), len(sections)))
    room = budget - size(head) - size(tail) - size(worst) - 4
    kept: list[str] = []
    shown_rows = shown_sections = 0
    for section in sections:
        if room <= 0:
            break
        cost = size(section.heading)
        rows: list[str] = []
        for row in section.rows:
            if cost + size(row) > room:
                break
            rows.append(row)
            cost += size(row)
        if rows:
            kept.append(section.heading + "".join(rows))
            room -= cost
            shown_rows += len(rows)
            shown_sections += 1
        if len(rows) < len(section.rows):
            break
    total_rows = sum(len(s.rows) for s in sections)
    omitted = Omitted(total_rows - shown_rows, len(sections) - shown_sections)
    text = _join(head, [*kept, note(omitted)], tail)
    return text if size(text) <= budget else hard_cut(text, budget)


def hard_cut(text: str, budget: int) -> str:
    """Last resort: cut at a line boundary below `budget` bytes."""
    suffix = "\n\n…(truncated)\n"
    data = text.encode("utf-8")[: max(budget - size(suffix), 0)]
    cut = data.decode("utf-8", errors="ignore")
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    return cut + suffix


def _join(head: str, middle: Sequence[str], tail: str) -> str:
    return head + "".join(middle) + tail
