"""Markdown for numbers and pipe tables in results comments and release notes.

Text from users (questions, titles, paths, URLs) goes through `ilab_gitops.ghtext` first;
cells passed to `table` must already be escaped for a table (`ghtext.text`,
`ghtext.code(..., cell=True)`, `ghtext.link(..., cell=True)`).
"""

from __future__ import annotations


def score(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def delta(before: float | None, after: float | None, digits: int = 2) -> str:
    if before is None or after is None:
        return "—"
    change = after - before
    if round(change, digits) == 0:
        return f"±{0:.{digits}f}"
    return f"{change:+.{digits}f}"


def change(before: float | None, after: float | None, digits: int = 2) -> str:
    """`before → after (delta)`."""
    return f"{score(before, digits)} → {score(after, digits)} ({delta(before, after, digits)})"


def table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """Lines of a pipe table; `align` has one of l/r per column."""
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines
