"""Markdown helpers for text that comes from users (taxonomy questions, PR titles).

Such text must not break a table, inject HTML, ping people (`@login`) or create
cross-references (`#123`) from a bot comment.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# `@login` pings people, `#123` cross-references issues: break both with a zero-width space.
_REFERENCE = re.compile(r"@(?=[A-Za-z0-9])|#(?=[0-9])")
_ZERO_WIDTH = "&#8203;"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def inline(text: str, limit: int = 300) -> str:
    """User text made safe for one line of Markdown, including a table cell."""
    flat = " ".join(clip(text, limit).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))
    return _REFERENCE.sub(lambda m: m.group(0) + _ZERO_WIDTH, escaped)


def code(text: str) -> str:
    """An inline code span that holds any text (paths, model ids)."""
    flat = " ".join(text.split()) or " "
    fence = "`"
    while fence in flat:
        fence += "`"
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def link(label: str, url: str) -> str:
    """A Markdown link; `label` is escaped, `url` must come from us (not from users)."""
    return f"[{inline(label)}]({url.replace(' ', '%20').replace(')', '%29')})"


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
