"""Render a `SyncReport` for people (text) or for GitHub Actions (annotations).

Notes and problems quote GitHub's and the store's error messages: every line goes through
`ilab_gitops.ghtext` so none can break the line or become a workflow command.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from ilab_gitops import ghtext
from ilab_gitops.results.sync import RunReport, Status, SyncReport

ReportFormat = Literal["text", "github"]
_ORDER: tuple[Status, ...] = ("reported", "up-to-date", "pending", "failed", "deferred", "invalid")


def format_report(report: SyncReport, fmt: ReportFormat = "text") -> str:
    lines: list[str] = []
    for run in report.runs:
        lines.extend(_run_lines(run, fmt))
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def summary_line(report: SyncReport) -> str:
    counts = Counter(run.status for run in report.runs)
    parts = [f"{counts[s]} {s.replace('-', ' ')}" for s in _ORDER if counts[s]] or ["no runs"]
    line = "results sync: " + ", ".join(parts)
    if report.rate_limited is not None:
        wait = report.rate_limited.retry_after
        line += "; GitHub rate limit reached" + (f" (retry after {wait:.0f} s)" if wait else "")
    if not report.complete:
        line += "; the next sync retries what is left"
    return line


def _run_lines(run: RunReport, fmt: ReportFormat) -> list[str]:
    first = f"{run.run}: {run.status}"
    if run.status == "pending" and run.notes:
        return [ghtext.line(f"{first} ({run.notes[0]})")]
    lines = [ghtext.line(first)]
    lines.extend(ghtext.line(f"  {action}") for action in run.actions)
    for note in run.notes:
        lines.append(
            _annotation("notice", run.run, note)
            if fmt == "github"
            else ghtext.line(f"  note: {note}")
        )
    for problem in run.problems:
        lines.append(
            _annotation("error", run.run, problem)
            if fmt == "github"
            else ghtext.line(f"  error: {problem}")
        )
    return lines


def _annotation(level: str, run: str, message: str) -> str:
    return ghtext.annotation(level, message, title=f"ilab-gitops results sync ({run})")
