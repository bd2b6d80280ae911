"""The sticky PR comment: what merging the PR does on the cluster, in Markdown.

The first line is a hidden marker the workflow uses to find and update its own comment.
Forbidden changes come first, then invalid files, environment changes (the platform
owners' approval), an overview table, one collapsed section
per changed run and the list of unchanged runs. GitHub rejects comments over 65,536
characters, so the body is cut at whole sections (long plain lists at whole lines) below a
budget, and ends with a pointer to the full report kept as a workflow artifact. File names,
field values and messages come from the PR: they go through `ilab_gitops.ghtext`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ilab_gitops import ghtext
from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.runsrepo.classify import DiffReport, RunDiff
from ilab_gitops.runsrepo.envdiff import EnvDiff
from ilab_gitops.runsrepo.fielddiff import show_value
from ilab_gitops.runsrepo.report import objects_summary
from ilab_gitops.runsrepo.stepdiff import StepDiff

MARKER = "<!-- ilab-gitops:pr-summary -->"
GITHUB_LIMIT = 65_536
#: Default size of the comment body, in UTF-16 code units (a safe upper bound for GitHub's count).
DEFAULT_BUDGET = 64_000
ARTIFACT = "ilab-pr-summary"

_ACTIONS = {"run": "runs", "rerun": "re-runs", "untouched": "untouched", "pruned": "pruned"}


def size(text: str) -> int:
    """Length as GitHub may count it: UTF-16 code units (never less than code points)."""
    return len(text.encode("utf-16-le")) // 2


def code(text: str, limit: int = 120, *, cell: bool = False) -> str:
    """`text` as an inline code span, whatever it contains (user values included)."""
    return ghtext.code(text, limit, cell=cell)


def plain(text: str) -> str:
    """`text` as Markdown prose: no HTML, links, mentions, formatting or table breaks."""
    return ghtext.text(text, None)


@dataclass(frozen=True)
class Block:
    text: str
    splittable: bool = False  # a plain list that may be cut between lines


def _diagnostic(d: Diagnostic) -> str:
    field = f" {code(d.field)}" if d.field else ""
    return f"- {code(f'{d.path}:{d.line}:{d.column}')} **{d.code}**{field}: {plain(d.message)}"


def _change_label(run: RunDiff, *, cell: bool = True) -> str:
    first = run.first_rerun
    label = {
        "new": "new",
        "removed": "removed",
        "invalid": "invalid",
        "unchanged": "no re-run",
        "rerun": f"re-run from {code(first.step_id, cell=cell)}" if first else "re-run",
    }[run.change]
    return f"**forbidden** ({label})" if run.violations else label


def _step_list(steps: Sequence[StepDiff]) -> str:
    if not steps:
        return "-"
    if len(steps) > 2:
        first, last = code(steps[0].step_id, cell=True), code(steps[-1].step_id, cell=True)
        return f"{first} ... {last} ({len(steps)})"
    return ", ".join(code(s.step_id, cell=True) for s in steps)


def _object_counts(run: RunDiff) -> str:
    added = sum(len(s.objects.added) for s in run.steps)
    changed = sum(len(s.objects.changed) for s in run.steps)
    pruned = sum(len(s.objects.pruned) for s in run.steps)
    parts = [
        f"+{added}" if added else "",
        f"~{changed}" if changed else "",
        f"-{pruned}" if pruned else "",
    ]
    return " ".join(p for p in parts if p) or "-"


def _overview(runs: Sequence[RunDiff]) -> Block:
    lines = [
        "#### Runs",
        "",
        "| Run | Change | Steps that will (re)run | Untouched | Objects (+add ~change -prune) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {code(run.run, cell=True)} | {_change_label(run)} | "
            f"{_step_list(run.steps_with('run', 'rerun'))} | "
            f"{_step_list(run.steps_with('untouched'))} | {_object_counts(run)} |"
        )
    return Block("\n".join(lines), splittable=True)


def _step_row(step: StepDiff) -> str:
    name = code(step.name or step.previous or "", cell=True)
    if step.name and step.previous and step.name != step.previous:
        name += f" (was {code(step.previous, cell=True)})"
    summary = objects_summary(step.objects) or "-"
    return (
        f"| {step.index + 1:02d} | {code(step.step_id, cell=True)} | {_ACTIONS[step.action]} | "
        f"{name} | {summary} |"
    )


def _objects(run: RunDiff) -> list[str]:
    lines = []
    for label in ("added", "changed", "pruned", "kept"):
        keys = [k for s in run.steps for k in getattr(s.objects, label)]
        if keys and run.change not in ("new", "removed"):
            suffix = " (left on the cluster: never pruned)" if label == "kept" else ""
            lines.append(f"- {label}{suffix}: " + ", ".join(code(k) for k in keys))
    return lines


def _details(run: RunDiff) -> Block:
    lines = [
        f"<details><summary><code>{ghtext.html(run.run)}</code>: "
        f"{ghtext.html(re.sub(r'[`*]', '', _change_label(run, cell=False)))}</summary>",
        "",
        f"File: {code(run.path)}",
    ]
    lines.extend(f"- {plain(note)}" for note in run.notes)
    if run.violations:
        lines += ["", "**Forbidden:**", *(_diagnostic(d) for d in run.violations)]
    if run.reasons:
        lines += ["", "**Why** (settings that changed):"]
        for reason in run.reasons:
            where = f" ({code(reason.location)})" if reason.location else ""
            source = "" if reason.source == "spec" else f"{plain(reason.source)}: "
            lines.append(
                f"- {source}{code(reason.field)}: {code(show_value(reason.old))} -> "
                f"{code(show_value(reason.new))}{where}"
            )
    if run.steps:
        lines += ["", "| # | Step | Action | Name | Objects |", "| --- | --- | --- | --- | --- |"]
        lines.extend(_step_row(s) for s in run.steps)
    objects = _objects(run)
    if objects:
        lines += ["", "Objects:", *objects]
    lines += ["", "</details>"]
    return Block("\n".join(lines))


def _headline(report: DiffReport) -> Block:
    counts = report.counts()
    parts = [
        f"**{n} {status}**" if n else f"{n} {status}"
        for status, n in counts.items()
        if n or status != "invalid"
    ]
    verdict = (
        "Nothing forbidden." if report.ok else "**This PR cannot be merged as it is**: see below."
    )
    if report.environments:
        verdict += (
            f" **{len(report.environments)} environment change(s) need the platform owners' "
            "approval.**"
        )
    return Block(
        f"{MARKER}\n### ilab-gitops: what merging this PR does on the cluster\n\n"
        f"Compared with {code(report.base)}: {', '.join(parts)}. {verdict}"
    )


def _diagnostics_block(title: str, intro: str, diagnostics: Iterable[Diagnostic]) -> Block:
    lines = [f"#### {title}", "", intro, "", *(_diagnostic(d) for d in diagnostics)]
    return Block("\n".join(lines), splittable=True)


def _environment_lines(env: EnvDiff) -> list[str]:
    areas = f" ({plain(', '.join(env.areas))})" if env.change == "changed" else ""
    lines = [f"- {code(env.name)} in {code(env.path)}: **{env.change}**{areas}"]
    for setting in env.settings:
        where = f" ({code(setting.location)})" if setting.location else ""
        lines.append(
            f"  - {plain(setting.area)}: {code(setting.field)}: "
            f"{code(show_value(setting.old))} -> {code(show_value(setting.new))}{where}"
        )
    lines.extend(f"  - **{plain(text)}**" for text in env.opt_ins)
    if env.runs:
        lines.append("  - used by: " + ", ".join(code(r) for r in env.runs))
    return lines


def _environments_block(environments: Sequence[EnvDiff]) -> Block:
    lines = [
        f"#### Environment changes ({len(environments)}): platform owners' approval needed",
        "",
        "> [!WARNING]\n> Environments decide where every run that names them lands and with "
        "what it runs (namespace, images, tolerations, node selectors, engines, privileges). "
        "They belong to the platform owners: merge only with their approval (CODEOWNERS).",
        "",
    ]
    for env in environments:
        lines.extend(_environment_lines(env))
    return Block("\n".join(lines), splittable=True)


def blocks(report: DiffReport) -> list[Block]:
    """The comment's sections, most important first."""
    out = [_headline(report)]
    if report.forbidden:
        out.append(
            _diagnostics_block(
                f"Forbidden changes ({len(report.forbidden)})",
                "> [!CAUTION]\n> These changes would break runs that may already be running on "
                'the cluster. See the repository README ("What the checks mean").',
                report.forbidden,
            )
        )
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if errors:
        out.append(
            _diagnostics_block(
                f"Invalid specs ({len(errors)})",
                "Fix these first; `ilab-gitops validate` shows the same list.",
                errors,
            )
        )
    if report.environments:
        out.append(_environments_block(report.environments))
    changed = [
        r
        for r in report.runs
        if r.status != "unchanged" or any(not s.objects.empty for s in r.steps)
    ]
    if changed:
        out.append(_overview(changed))
        out.extend(_details(r) for r in changed)
    quiet = [r for r in report.runs if r not in changed]
    if quiet:
        out.append(
            Block(
                f"<details><summary>Unchanged runs ({len(quiet)})</summary>\n\n"
                + ", ".join(code(r.run) for r in quiet)
                + "\n\n</details>"
            )
        )
    return out


def _pointer(shown: int, total: int, details_url: str | None) -> str:
    where = f"the `{ARTIFACT}` artifact"
    if details_url:
        where += f" of {ghtext.link('this workflow run', details_url)}"
    return (
        f"---\n**Truncated**: {shown} of {total} sections shown (GitHub comments hold at most "
        f"{GITHUB_LIMIT:,} characters). The full report is in {where}: "
        "`comment-full.md` and `diff.json`."
    )


def fit(parts: Sequence[Block], budget: int, details_url: str | None = None) -> str:
    """Join `parts`, cutting whole sections (or lines of a list) to stay within `budget`."""
    whole = "\n\n".join(p.text for p in parts) + "\n"
    if size(whole) <= budget:
        return whole
    reserve = size(_pointer(len(parts), len(parts), details_url)) + 64
    kept: list[str] = []
    used = 0
    for part in parts:
        cost = size(part.text) + 2
        if used + cost <= budget - reserve:
            kept.append(part.text)
            used += cost
            continue
        if part.splittable:
            lines = part.text.split("\n")
            taken: list[str] = []
            for line in lines:
                if used + size(line) + 1 + 40 > budget - reserve:
                    break
                taken.append(line)
                used += size(line) + 1
            if taken:
                kept.append("\n".join([*taken, f"- ... and {len(lines) - len(taken)} more"]))
        break
    if not kept:  # a budget too small for even the headline: keep the marker at least
        kept.append(MARKER)
    return "\n\n".join([*kept, _pointer(len(kept), len(parts), details_url)]) + "\n"


def pr_comment(
    report: DiffReport, *, budget: int = DEFAULT_BUDGET, details_url: str | None = None
) -> str:
    """The comment body: starts with `MARKER`, at most `budget` UTF-16 units long."""
    return fit(blocks(report), budget, details_url)
