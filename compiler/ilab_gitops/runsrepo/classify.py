"""Compare the runs of two snapshots and classify each: new, unchanged, rerun, removed.

Environment files are compared too, as their own class (`envdiff`): not runs, and not
forbidden, but the platform owners' decision.

Some changes cannot be undone by the GitOps engines and are *forbidden* (reported as error
diagnostics, which make `diff` exit 2): once a run is on the base branch it may already be
running, and

- renaming it (`metadata.name` of an existing file) prunes every object of the old run and
  starts the new one from scratch, leaving the old workspace volume behind;
- deleting its file takes it away from the engine mid-flight: Flux prunes it, Argo CD leaves
  it running unmanaged (allowed only with `allow_removals`, the explicit maintainer override
  used to retire or abort a run);
- changing `spec.environment` moves a started run to another cluster profile;
- lowering an `attempt` counter brings back the name of an earlier attempt whose step already
  ran (and wrote into the same step folder);
- reusing the name of a run deleted earlier in the base history with a different spec mixes the
  new run with what the old one left: the workspace volume is never pruned and uploads are
  keyed by run name.

A change that renames step k is always at or before k (names are hash-chained), so re-running
a finished step is only ever the consequence of a visible spec change, shown as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ilab_gitops.diagnostics import Diagnostic, sort_diagnostics
from ilab_gitops.load.sources import Document, PathKey
from ilab_gitops.manifests import Manifests, compile_run
from ilab_gitops.runsrepo.envdiff import EnvDiff, environment_diffs
from ilab_gitops.runsrepo.fielddiff import (
    MISSING,
    FieldChange,
    decreased_attempts,
    field_changes,
    show_value,
)
from ilab_gitops.runsrepo.history import HistoricRun
from ilab_gitops.runsrepo.sdgpreview import sdg_notes
from ilab_gitops.runsrepo.snapshot import SnapRun, Snapshot
from ilab_gitops.runsrepo.stepdiff import StepDiff, step_diffs

Change = Literal["new", "unchanged", "rerun", "removed", "invalid"]
Status = Literal["new", "unchanged", "rerun", "removed", "invalid", "forbidden"]


@dataclass(frozen=True)
class Reason:
    """A changed setting: `source` is `spec` or `environment <name>`."""

    source: str
    field: str
    old: Any
    new: Any
    location: str = ""  # path:line:col in the working tree, when the field is there

    def as_text(self) -> str:
        where = f"{self.location}: " if self.location else ""
        prefix = "" if self.source == "spec" else f"{self.source}: "
        return f"{where}{prefix}{self.field}: {show_value(self.old)} -> {show_value(self.new)}"


@dataclass(frozen=True)
class RunDiff:
    run: str
    path: str  # as shown: the working-tree file, or the base file when it is gone
    change: Change
    steps: tuple[StepDiff, ...] = ()
    reasons: tuple[Reason, ...] = ()
    violations: tuple[Diagnostic, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        return "forbidden" if self.violations else self.change

    @property
    def first_rerun(self) -> StepDiff | None:
        return next((s for s in self.steps if s.action == "rerun"), None)

    def steps_with(self, *actions: str) -> list[StepDiff]:
        return [s for s in self.steps if s.action in actions]


@dataclass(frozen=True)
class DiffReport:
    base: str
    runs: tuple[RunDiff, ...]
    diagnostics: tuple[Diagnostic, ...] = ()  # working-tree errors, base-side warnings
    #: Environments added, changed or removed: not forbidden, but the platform owners' call.
    environments: tuple[EnvDiff, ...] = ()

    @property
    def approvals(self) -> list[Diagnostic]:
        """One warning per environment change: needs the platform owners' approval."""
        return sort_diagnostics(e.approval for e in self.environments)

    @property
    def forbidden(self) -> list[Diagnostic]:
        return sort_diagnostics(d for r in self.runs for d in r.violations)

    @property
    def invalid(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.forbidden

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("new", "rerun", "unchanged", "removed", "invalid", "forbidden"), 0)
        for run in self.runs:
            out[run.status] += 1
        return out


@dataclass
class _Context:
    base: Snapshot
    head: Snapshot
    history: Mapping[str, list[HistoricRun]]
    allow_removals: bool
    consumed: set[str] = field(default_factory=set)  # base runs explained by a rename


def _at(document: Document, path: PathKey, code: str, dotted: str, message: str) -> Diagnostic:
    pos = document.source_map.locate(path)
    return Diagnostic(document.path, pos.line, pos.column, code, dotted, message)


def _location(document: Document | None, path: PathKey) -> str:
    if document is None:
        return ""
    pos = document.source_map.locate(path)
    return f"{document.path}:{pos.line}:{pos.column}"


def _compile(snap: SnapRun | None) -> Manifests | None:
    if snap is None or snap.environment is None:
        return None
    return compile_run(snap.run, snap.environment)


def _spec_reasons(base: SnapRun, head: SnapRun) -> list[tuple[FieldChange, Reason]]:
    out = []
    for change in field_changes(base.run.model_dump(mode="json"), head.run.model_dump(mode="json")):
        location = _location(head.document, change.path) if change.new is not MISSING else ""
        out.append((change, Reason("spec", change.dotted, change.old, change.new, location)))
    return out


def _environment_reasons(base: SnapRun, head: SnapRun) -> list[Reason]:
    if base.environment is None or head.environment is None:
        return []
    if base.run.spec.environment != head.run.spec.environment:
        return []  # forbidden anyway; the field diff of two profiles would only be noise
    source = f"environment {head.run.spec.environment}"
    return [
        Reason(
            source,
            change.dotted,
            change.old,
            change.new,
            _location(head.env_document, change.path) if change.new is not MISSING else "",
        )
        for change in field_changes(
            base.environment.model_dump(mode="json"), head.environment.model_dump(mode="json")
        )
    ]


def _both(ctx: _Context, base: SnapRun, head: SnapRun) -> RunDiff:
    violations: list[Diagnostic] = []
    spec_changes = _spec_reasons(base, head)
    if base.run.spec.environment != head.run.spec.environment:
        violations.append(
            _at(
                head.document,
                ("spec", "environment"),
                "environment-changed",
                "spec.environment",
                f'changed from "{base.run.spec.environment}" to "{head.run.spec.environment}": '
                f'run "{head.name}" is on {ctx.base.label} and may have started on that cluster '
                "profile; keep the environment and add a new run for the other one",
            )
        )
    for change in decreased_attempts([c for c, _ in spec_changes]):
        violations.append(
            _at(
                head.document,
                change.path,
                "attempt-decreased",
                change.dotted,
                f"lowered from {show_value(change.old)} to {show_value(change.new)}: that "
                "brings back the step names of an earlier attempt, whose outputs already exist; "
                "attempt counters only go up (bump it past the highest value used)",
            )
        )
    reasons = [r for _, r in spec_changes] + _environment_reasons(base, head)
    steps = step_diffs(_compile(base), _compile(head))
    notes = [] if base.path == head.path else [f"moved from {base.document.path}"]
    if base.environment is None:
        notes.append(f"its environment is missing on {ctx.base.label}; compared as new")
    notes += sdg_notes(head.run, steps)
    kind: Change = "rerun" if any(s.action == "rerun" for s in steps) else "unchanged"
    return RunDiff(
        run=head.name,
        path=head.document.path,
        change="new" if base.environment is None else kind,
        steps=steps,
        reasons=tuple(reasons),
        violations=tuple(violations),
        notes=tuple(notes),
    )


def _renamed_from(ctx: _Context, head: SnapRun) -> SnapRun | None:
    before = ctx.base.run_at(head.path)
    if before is None or before.name == head.name or before.name in ctx.head.runs:
        return None
    return before


def _new(ctx: _Context, head: SnapRun) -> RunDiff:
    violations: list[Diagnostic] = []
    notes: list[str] = []
    before = _renamed_from(ctx, head)
    if before is not None:
        ctx.consumed.add(before.name)
        violations.append(
            _at(
                head.document,
                ("metadata", "name"),
                "run-renamed",
                "metadata.name",
                f'changed from "{before.name}" to "{head.name}": run "{before.name}" is on '
                f"{ctx.base.label} and may be running; renaming prunes all of its objects and "
                f'starts "{head.name}" from scratch. Keep the name; add a new file for a new run',
            )
        )
    spec = head.run.model_dump(mode="json")
    for earlier in ctx.history.get(head.name, []):
        if earlier.spec == spec:
            notes.append(f"restores the run deleted in {earlier.commit[:12]}")
            break
        violations.append(
            _at(
                head.document,
                ("metadata", "name"),
                "name-reused",
                "metadata.name",
                f'run name "{head.name}" was used by {earlier.path}, deleted in '
                f"{earlier.commit[:12]}, with a different spec; the old run's workspace volume "
                "is never pruned and uploads are keyed by run name, so pick a new name",
            )
        )
        break
    steps = step_diffs(None, _compile(head))
    notes += sdg_notes(head.run, steps)
    return RunDiff(
        run=head.name,
        path=head.document.path,
        change="new",
        steps=steps,
        violations=tuple(violations),
        notes=tuple(notes),
    )


def _removed(ctx: _Context, base: SnapRun) -> RunDiff:
    if base.path in ctx.head.invalid:
        return RunDiff(
            run=base.name,
            path=base.document.path,
            change="invalid",
            notes=("the file no longer validates; fix it to see the changes",),
        )
    violations = []
    notes = []
    if ctx.allow_removals:
        notes.append("removal allowed by --allow-removals")
    else:
        violations.append(
            _at(
                base.document,
                ("metadata", "name"),
                "run-deleted",
                "metadata.name",
                f'run "{base.name}" is on {ctx.base.label} and may be running; deleting its '
                "spec takes it away from the engine mid-flight. To abort or retire a run, "
                'follow "Abort a run" in the README: a maintainer allows the removal '
                "(diff --allow-removals)",
            )
        )
    return RunDiff(
        run=base.name,
        path=base.document.path,
        change="removed",
        steps=step_diffs(_compile(base), None),
        violations=tuple(violations),
        notes=tuple(notes),
    )


def compare(
    base: Snapshot,
    head: Snapshot,
    history: Mapping[str, list[HistoricRun]] | None = None,
    *,
    allow_removals: bool = False,
) -> DiffReport:
    """Classify every run of either side; runs sorted by name."""
    ctx = _Context(base, head, history or {}, allow_removals)
    diffs: list[RunDiff] = []
    for name, snap in head.runs.items():
        diffs.append(_both(ctx, base.runs[name], snap) if name in base.runs else _new(ctx, snap))
    for name, snap in base.runs.items():
        if name not in head.runs and name not in ctx.consumed:
            diffs.append(_removed(ctx, snap))
    diagnostics = sort_diagnostics([*head.diagnostics, *base.diagnostics])
    return DiffReport(
        base.label,
        tuple(sorted(diffs, key=lambda d: d.run)),
        tuple(diagnostics),
        environment_diffs(base, head),
    )
