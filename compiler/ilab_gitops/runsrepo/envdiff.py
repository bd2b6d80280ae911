"""Environment changes in a pull request: the platform owners' part of a runs repo.

An `Environment` decides where every run that names it lands and with what it runs: the
namespace, images, tolerations, node selectors, the engines, the pods' identity. A PR that
adds, edits or removes one is therefore not a run change. It is reported on its own, each
setting grouped under what a reviewer judges, and marked as needing the platform owners'
approval (the runs repo's CODEOWNERS gives them `environments/`). It is not forbidden: `diff`
still exits 0 for it, with a warning annotation at the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.runsrepo.fielddiff import MISSING, FieldChange, field_changes
from ilab_gitops.runsrepo.snapshot import SnapEnv, Snapshot

EnvChange = Literal["added", "changed", "removed"]
APPROVAL_CODE = "needs-owner-approval"

#: What a reviewer judges, in display order, and the spec fields that belong to it.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("namespace", ("namespace", "allowSystemNamespace")),
    ("privileges", ("podSecurity", "commitStatusProgress")),
    ("tolerations", ("tolerations", "allowTolerateAllTaints")),
    ("node selector", ("nodeSelector",)),
    ("images", ("images", "allowTagImages")),
    ("engines", ("engines", "flux")),
    ("Kueue queue", ("kueue",)),
    ("storage", ("storage",)),
    ("GPUs and resources", ("gpu", "resources", "trainingKind", "evaluationKind")),
    ("object store", ("objectStore",)),
    ("cluster", ("cluster", "kubernetesVersion")),
)
_AREA_OF = {field: area for area, fields in AREAS for field in fields}
_ORDER = {area: index for index, (area, _) in enumerate(AREAS)}

#: Opt-ins a reviewer must see whenever a profile that sets them is added or changed.
OPT_INS = (
    ("allowSystemNamespace", "runs in a system namespace (opted in)"),
    ("allowTolerateAllTaints", "tolerates every taint (opted in)"),
    ("allowTagImages", "accepts images not pinned by digest (opted in)"),
    (
        "commitStatusProgress",
        "gives the training and MT-Bench pods an API token for their progress ConfigMaps "
        "(opted in)",
    ),
)


def area_of(path: tuple[str | int, ...]) -> str:
    """The reviewer's heading for a changed field, from its path in the Environment."""
    if len(path) >= 2 and path[0] == "spec" and isinstance(path[1], str):
        return _AREA_OF.get(path[1], "other")
    return "name" if path[:1] == ("metadata",) else "other"


@dataclass(frozen=True)
class Setting:
    """One changed setting of a profile; `field` is the dotted path from the file's root."""

    area: str
    field: str
    old: Any
    new: Any
    location: str = ""  # path:line:col in the working tree, when the field is there


@dataclass(frozen=True)
class EnvDiff:
    """An added, changed or removed environment, with what changed and who must approve."""

    name: str
    path: str  # as shown: the working-tree file, or the base file when it is gone
    change: EnvChange
    settings: tuple[Setting, ...]
    opt_ins: tuple[str, ...]
    runs: tuple[str, ...]  # runs that name this environment (working tree, else base)
    approval: Diagnostic

    @property
    def areas(self) -> list[str]:
        """The headings touched, in display order."""
        return sorted({s.area for s in self.settings}, key=lambda a: _ORDER.get(a, len(_ORDER)))


def _location(env: SnapEnv, path: tuple[str | int, ...]) -> str:
    pos = env.document.source_map.locate(path)
    return f"{env.document.path}:{pos.line}:{pos.column}"


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[FieldChange]:
    """Every leaf of a whole profile (lists count as one value), as changes from nothing."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _leaves(value[key], (*path, key))
    elif value not in ({}, []):
        yield FieldChange(path, MISSING, value)


def _settings(base: SnapEnv | None, head: SnapEnv | None) -> list[Setting]:
    old = base.environment.model_dump(mode="json") if base else None
    new = head.environment.model_dump(mode="json") if head else None
    if old is not None and new is not None:
        changes = field_changes(old, new)
    elif new is not None:
        changes = list(_leaves(new))
    else:
        changes = [FieldChange(c.path, c.new, MISSING) for c in _leaves(old)]
    out = []
    for change in changes:
        if change.path[:1] in (("apiVersion",), ("kind",)):
            continue
        where = _location(head, change.path) if head and change.new is not MISSING else ""
        out.append(Setting(area_of(change.path), change.dotted, change.old, change.new, where))
    return sorted(out, key=lambda s: (_ORDER.get(s.area, len(_ORDER)), s.field))


def _approval(env: SnapEnv, change: EnvChange, areas: list[str], label: str) -> Diagnostic:
    pos = env.document.source_map.locate(("metadata", "name"))
    what = {
        "added": f"adds environment {env.name!r}",
        "changed": f"changes environment {env.name!r} ({', '.join(areas) or 'settings'})",
        "removed": f"removes environment {env.name!r}, which is on {label}",
    }[change]
    return Diagnostic(
        env.document.path,
        pos.line,
        pos.column,
        APPROVAL_CODE,
        "metadata.name",
        f"this PR {what}: environments/ belongs to the platform owners, so it needs their "
        "approval (CODEOWNERS) before it merges",
        severity="warning",
    )


def _runs_using(name: str, *sides: Snapshot) -> tuple[str, ...]:
    for side in sides:
        using = sorted(r.name for r in side.runs.values() if r.run.spec.environment == name)
        if using:
            return tuple(using)
    return ()


def _one(name: str, base: Snapshot, head: Snapshot) -> EnvDiff | None:
    old, new = base.environments.get(name), head.environments.get(name)
    if new is None and name in head.broken_environments:
        return None  # its file does not validate: the errors say why, and diff fails
    change: EnvChange = "added" if old is None else ("removed" if new is None else "changed")
    settings = _settings(old, new)
    if change == "changed" and not settings:
        return None  # comments or layout only: nothing the cluster would see
    shown = new or old
    assert shown is not None
    opt_ins = tuple(
        text
        for field, text in OPT_INS
        if new is not None and getattr(new.environment.spec, field) is True
    )
    areas = sorted({s.area for s in settings}, key=lambda a: _ORDER.get(a, len(_ORDER)))
    return EnvDiff(
        name=name,
        path=shown.document.path,
        change=change,
        settings=tuple(settings),
        opt_ins=opt_ins,
        runs=_runs_using(name, head, base),
        approval=_approval(shown, change, areas, base.label),
    )


def environment_diffs(base: Snapshot, head: Snapshot) -> tuple[EnvDiff, ...]:
    """Every environment added, changed or removed between the two sides, sorted by name."""
    names: Iterable[str] = sorted(set(base.environments) | set(head.environments))
    found = (_one(name, base, head) for name in names)
    return tuple(d for d in found if d is not None)
