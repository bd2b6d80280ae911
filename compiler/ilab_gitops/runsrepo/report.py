"""Render a `DiffReport` as text for people or JSON for tools.

Forbidden changes and invalid files are diagnostics, printed by the CLI in the usual
`file:line:col` (or GitHub annotation) format; these renderings describe what happens per run.
Text lines quote paths and field values from the PR: each goes through `ghtext.line`.
"""

from __future__ import annotations

import json
from typing import Any

from ilab_gitops import ghtext
from ilab_gitops.runsrepo.classify import DiffReport, Reason, RunDiff
from ilab_gitops.runsrepo.envdiff import EnvDiff, Setting
from ilab_gitops.runsrepo.fielddiff import MISSING, show_value
from ilab_gitops.runsrepo.stepdiff import ObjectChanges, StepDiff

INDENT = "    "


def _ids(steps: list[StepDiff]) -> str:
    return ", ".join(s.step_id for s in steps)


def describe(run: RunDiff) -> str:
    """One line: what happens to this run's steps."""
    if run.change == "invalid":
        return "cannot be compared: " + "; ".join(run.notes)
    if run.change == "new":
        steps = run.steps_with("run")
        return f"{len(steps)} step(s) will run: {_ids(steps)}"
    if run.change == "removed":
        return f"all {len(run.steps)} step(s) leave git: {_ids(run.steps_with('pruned'))}"
    first = run.first_rerun
    if first is None:
        changed = sum(len(s.objects.changed) for s in run.steps)
        return "no step re-runs" + (f"; {changed} object(s) change in place" if changed else "")
    again = run.steps_with("rerun")
    untouched = run.steps_with("untouched")
    return f"re-runs from {first.step_id}: {_ids(again)}" + (
        f"; untouched: {_ids(untouched)}" if untouched else ""
    )


def objects_summary(changes: ObjectChanges) -> str:
    parts = [
        f"{len(items)} {label}"
        for label, items in (
            ("added", changes.added),
            ("changed", changes.changed),
            ("pruned", changes.pruned),
            ("kept (never pruned)", changes.kept),
        )
        if items
    ]
    return ", ".join(parts)


def as_text(report: DiffReport) -> str:
    lines = []
    width = max((len(r.run) for r in report.runs), default=0)
    for run in report.runs:
        lines.append(f"{run.run:<{width}}  {run.status:<9}  {run.path}: {describe(run)}")
        lines.extend(f"{INDENT}{note}" for note in run.notes)
        lines.extend(f"{INDENT}{reason.as_text()}" for reason in run.reasons)
        for step in run.steps:
            summary = objects_summary(step.objects)
            if summary and run.change not in ("new", "removed"):
                lines.append(f"{INDENT}{step.folder}: {summary}")
    lines.extend(_environment_text(report.environments))
    counts = report.counts()
    lines.append(
        ", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "invalid")
        + f" (working tree against {report.base})"
    )
    return "".join(ghtext.line(line) + "\n" for line in lines)


def _environment_text(environments: tuple[EnvDiff, ...]) -> list[str]:
    """Environment changes: their own class, flagged for the platform owners."""
    lines = []
    for env in environments:
        areas = f" ({', '.join(env.areas)})" if env.change == "changed" else ""
        lines.append(
            f"environment {env.name}  {env.change}{areas}  {env.path}: "
            "needs the platform owners' approval"
        )
        for setting in env.settings:
            where = f"{setting.location}: " if setting.location else ""
            lines.append(
                f"{INDENT}{where}{setting.area}: {setting.field}: "
                f"{show_value(setting.old)} -> {show_value(setting.new)}"
            )
        lines.extend(f"{INDENT}{text}" for text in env.opt_ins)
        if env.runs:
            lines.append(f"{INDENT}used by: {', '.join(env.runs)}")
    if environments:
        lines.append(
            f"{len(environments)} environment change(s) need the platform owners' approval"
        )
    return lines


def _change(field: str, old: Any, new: Any, location: str | None) -> dict[str, Any]:
    """One field's old and new value (null and `...Present: false` where it is absent)."""
    return {
        "field": field,
        "old": None if old is MISSING else old,
        "new": None if new is MISSING else new,
        "oldPresent": old is not MISSING,
        "newPresent": new is not MISSING,
        "location": location,
    }


def _reason(reason: Reason) -> dict[str, Any]:
    return {
        "source": reason.source,
        **_change(reason.field, reason.old, reason.new, reason.location),
    }


def _step(step: StepDiff) -> dict[str, Any]:
    return {
        "step": step.step_id,
        "folder": step.folder,
        "action": step.action,
        "name": step.name,
        "previousName": step.previous,
        "objects": {
            "added": list(step.objects.added),
            "changed": list(step.objects.changed),
            "pruned": list(step.objects.pruned),
            "kept": list(step.objects.kept),
        },
    }


def _setting(setting: Setting) -> dict[str, Any]:
    return {
        "area": setting.area,
        **_change(setting.field, setting.old, setting.new, setting.location),
    }


def _environment(env: EnvDiff) -> dict[str, Any]:
    return {
        "environment": env.name,
        "path": env.path,
        "change": env.change,
        "areas": env.areas,
        "settings": [_setting(s) for s in env.settings],
        "optIns": list(env.opt_ins),
        "runs": list(env.runs),
        "needsApproval": True,
    }


def as_json(report: DiffReport) -> str:
    first = {r.run: r.first_rerun for r in report.runs}
    data = {
        "base": report.base,
        "ok": report.ok,
        "summary": report.counts(),
        "runs": [
            {
                "run": r.run,
                "path": r.path,
                "status": r.status,
                "change": r.change,
                "firstRerunStep": step.step_id if (step := first[r.run]) else None,
                "notes": list(r.notes),
                "reasons": [_reason(x) for x in r.reasons],
                "steps": [_step(s) for s in r.steps],
                "forbidden": [d.as_dict() for d in r.violations],
            }
            for r in report.runs
        ],
        "forbidden": [d.as_dict() for d in report.forbidden],
        "diagnostics": [d.as_dict() for d in report.diagnostics],
        "environments": [_environment(e) for e in report.environments],
        "needsOwnerApproval": bool(report.environments),
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
