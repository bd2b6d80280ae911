"""Per-step comparison of two compilations of a run: which steps re-run, which objects change.

Step names are hash-chained (GITOPS.md, "The design these facts force"), so the first step
whose name differs is the first one that runs again, and every later step differs too. Objects
are matched by `Kind/name`: a renamed step shows up as its old objects pruned and its new ones
added, which is exactly what the GitOps engine will do on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ilab_gitops.manifests import STEP_IDS, K8sObject, Manifests
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


def _per_step(manifests: Manifests | None) -> list[dict[str, K8sObject]]:
    """Objects of each step (Flux wiring included), keyed by `Kind/name`."""
    out: list[dict[str, K8sObject]] = [{} for _ in STEP_IDS]
    if manifests is None:
        return out
    for step in manifests.steps:
        out[step.index] = {_key(obj): obj for obj in step.objects}
    for index, obj in enumerate(manifests.flux):
        out[index][_key(obj)] = obj
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
    """Index of the first step whose name differs, or None when every step keeps its name."""
    for old, new in zip(base.steps, head.steps, strict=True):
        if old.name != new.name:
            return old.index
    return None


def step_diffs(base: Manifests | None, head: Manifests | None) -> tuple[StepDiff, ...]:
    """One entry per pipeline step, in order."""
    old_objects, new_objects = _per_step(base), _per_step(head)
    rerun_from = first_renamed(base, head) if base is not None and head is not None else None
    out = []
    for index, step_id in enumerate(STEP_IDS):
        action: StepAction
        if head is None:
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
                name=head.steps[index].name if head is not None else None,
                previous=base.steps[index].name if base is not None else None,
                objects=object_changes(old_objects[index], new_objects[index]),
            )
        )
    return tuple(out)
