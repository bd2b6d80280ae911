"""Per-step comparison of two compilations of a run: which steps re-run, which objects change.

Step names are hash-chained (GITOPS.md, "The design these facts force"), so the first step
whose name differs is the first one that runs again, and every later step differs too. Objects
are matched by `Kind/name`: a renamed step shows up as its old objects pruned and its new ones
added, which is exactly what the GitOps engine will do on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ilab_gitops.manifests import K8sObject, Manifests
from ilab_gitops.manifests.model import step_folder

StepAction = Literal["run", "rerun", "untouched", "pruned"]


@dataclass(frozen=True)
class ObjectChanges:
    """`Kind/name` of objects added, changed in place, pruned, or left behind on purpose."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # leave git but stay on the cluster (Prune=false, e.g. the PVC)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.pruned or self.kept)


@dataclass(frozen=True)
class StepDiff:
    step_id: str
    index: int
    action: StepAction
    name: str | None  # on the working tree
    previous: str | None  # on the base

    objects: ObjectChanges = ObjectChanges()

    @property
    def folder(self) -> str:
        return step_folder(self.index, self.step_id)


def _key(obj: K8sObject) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _never_pruned(obj: K8sObject) -> bool:
    annotations = obj.get("metadata", {}).get("annotations", {})
    return "Prune=false" in str(annotations.get("argocd.argoproj.io/sync-options", ""))


def _step_ids(manifests: Manifests) -> list[str]:
    return [step.step_id for step in manifests.steps]


def _per_step(manifests: Manifests | None) -> dict[str, dict[str, K8sObject]]:
    """Objects of each step (Flux wiring included), keyed by step id, then `Kind/name`."""
    if manifests is None:
        return {}
    out = {step.step_id: {_key(obj): obj for obj in step.objects} for step in manifests.steps}
    ids = _step_ids(manifests)
    for index, obj in enumerate(manifests.flux):
        out[ids[index]][_key(obj)] = obj
    return out


def object_changes(old: dict[str, K8sObject], new: dict[str, K8sObject]) -> ObjectChanges:
    gone = sorted(set(old) - set(new))
    return ObjectChanges(
        added=tuple(sorted(set(new) - set(old))),
        changed=tuple(sorted(k for k in set(old) & set(new) if old[k] != new[k])),
        pruned=tuple(k for k in gone if not _never_pruned(old[k])),
        kept=tuple(k for k in gone if _never_pruned(old[k])),
    )


def first_renamed(base: Manifests, head: Manifests) -> int | None:
    """Index (on the head) of the first step whose name differs, or None when every step
    keeps its name. Adding or dropping the optional sdg step changes the first step."""
    if _step_ids(base) != _step_ids(head):
        return 0
    for old, new in zip(base.steps, head.steps, strict=True):
        if old.name != new.name:
            return new.index
    return None


def step_diffs(base: Manifests | None, head: Manifests | None) -> tuple[StepDiff, ...]:
    """One entry per pipeline step of the head (of the base when the run is removed), in
    order; a step only the base had (the sdg step dropped) comes first, as pruned."""
    old_objects, new_objects = _per_step(base), _per_step(head)
    rerun_from = first_renamed(base, head) if base is not None and head is not None else None
    old_names = {s.step_id: s.name for s in base.steps} if base is not None else {}
    out: list[StepDiff] = []
    if head is None:
        assert base is not None
        order = [(s.index, s.step_id, "pruned") for s in base.steps]
    else:
        head_ids = _step_ids(head)
        dropped = [(0, sid, "pruned") for sid in old_names if sid not in head_ids]
        order = dropped + [(s.index, s.step_id, "") for s in head.steps]
    head_names = {s.step_id: s.name for s in head.steps} if head is not None else {}
    for index, step_id, forced in order:
        action: StepAction
        if forced == "pruned":
            action = "pruned"
        elif base is None:
            action = "run"
        elif rerun_from is not None and index >= rerun_from:
            action = "rerun"
        else:
            action = "untouched"
        out.append(
            StepDiff(
                step_id=step_id,
                index=index,
                action=action,
                name=head_names.get(step_id),
                previous=old_names.get(step_id),
                objects=object_changes(old_objects.get(step_id, {}), new_objects.get(step_id, {})),
            )
        )
    return tuple(out)
