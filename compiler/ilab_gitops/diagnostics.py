"""Diagnostics: errors as values, collected, and rendered in one format.

Every problem the tool finds in user input becomes a `Diagnostic`; nothing raises past the
validation boundary. Formatters turn them into text, GitHub annotations or JSON. Paths,
fields and messages may hold anything a PR puts there: text and annotations go through
`ilab_gitops.ghtext`, so each diagnostic is exactly one line and never a workflow command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
Format = Literal["text", "github", "json"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, located at `path:line:column` (1-based) and a dotted field path."""

    path: str
    line: int
    column: int
    code: str
    field: str
    message: str
    severity: Severity = "error"

    def as_text(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        from ilab_gitops import ghtext  # here: a valid file prints no diagnostic

        field = f" {self.field}:" if self.field else ""
        return ghtext.line(f"{where}: {self.severity}[{self.code}]{field} {self.message}")

    def as_github(self) -> str:
        from ilab_gitops import ghtext

        title = f"{self.code} {self.field}".strip()
        return ghtext.annotation(
            self.severity,
            self.message,
            file=self.path,
            line=self.line,
            col=self.column,
            title=title,
        )

    def as_dict(self) -> dict[str, str | int]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable, reader-friendly order: by file, then position, without duplicates."""
    return sorted(set(diagnostics))


def format_diagnostics(diagnostics: Sequence[Diagnostic], fmt: Format) -> str:
    """Render diagnostics in the requested format; empty string when there are none."""
    if fmt == "json":
        return json.dumps([d.as_dict() for d in diagnostics], indent=2, sort_keys=True) + "\n"
    if not diagnostics:
        return ""
    if fmt == "github":
        return "".join(d.as_github() + "\n" for d in diagnostics)
    return "".join(d.as_text() + "\n" for d in diagnostics)
