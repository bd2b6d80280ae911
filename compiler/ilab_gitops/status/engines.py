"""What the GitOps engines say about a run: the Argo CD Application or the Flux
Kustomizations. Pure functions over the objects as plain dicts (custom resources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ilab_gitops.manifests.pods import LABEL_STEP

Obj = Mapping[str, Any]

WORKLOAD_KINDS = ("Job", "PyTorchJob", "TrainJob")
#: Flux Ready reasons that only say "not yet": the step has not started, nothing is wrong.
_FLUX_WAITING_REASONS = frozenset(
    {"DependencyNotReady", "Progressing", "ProgressingWithRetry", "HealthCheckFailed"}
)


@dataclass(frozen=True)
class EngineNote:
    """What an engine says about a step whose workload does not exist yet."""

    message: str
    warning: bool = False


def _get(obj: Obj, *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _short(revision: Any) -> str:
    text = str(revision or "")
    return text[:8] if len(text) >= 40 else text


def application_line(app: Obj) -> str:
    """One line: sync and health of the run's Argo CD Application and its operation."""
    name = _get(app, "metadata", "name")
    sync = _get(app, "status", "sync", "status") or "Unknown"
    revision = _short(_get(app, "status", "sync", "revision"))
    health = _get(app, "status", "health", "status") or "Unknown"
    line = f"Argo CD Application {name}: {sync}"
    if revision:
        line += f" at {revision}"
    line += f", {health}"
    phase = _get(app, "status", "operationState", "phase")
    if phase:
        line += f"; sync {phase}"
        message = _get(app, "status", "operationState", "message")
        if message:
            line += f": {message}"
    return line


def application_notes(app: Obj, run: str, steps: Sequence[str]) -> dict[str, EngineNote]:
    """Step -> note, for the step workloads the Application lists (by name prefix)."""
    notes: dict[str, EngineNote] = {}
    for resource in _get(app, "status", "resources") or []:
        if not isinstance(resource, Mapping) or resource.get("kind") not in WORKLOAD_KINDS:
            continue
        if resource.get("requiresPruning"):
            continue
        name = str(resource.get("name") or "")
        for step in steps:
            if name.startswith(f"{run}-{step}-"):
                wave = resource.get("syncWave")
                where = f"sync wave {wave}" if wave is not None else "a later sync wave"
                notes[step] = EngineNote(f"not applied yet by Argo CD ({where})")
    return notes


def _ready_condition(kustomization: Obj) -> Obj | None:
    for condition in _get(kustomization, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition
    return None


def kustomization_step(kustomization: Obj) -> str | None:
    labels = _get(kustomization, "metadata", "labels") or {}
    step = labels.get(LABEL_STEP)
    return str(step) if step else None


def kustomizations_line(kustomizations: Sequence[Obj]) -> str:
    ready = sum(
        1
        for k in kustomizations
        if (c := _ready_condition(k)) is not None and c.get("status") == "True"
    )
    return f"Flux: {ready}/{len(kustomizations)} step Kustomizations ready"


def kustomization_notes(kustomizations: Sequence[Obj]) -> dict[str, EngineNote]:
    """Step -> what its Kustomization's Ready condition says, when it is not ready."""
    notes: dict[str, EngineNote] = {}
    for kustomization in kustomizations:
        step = kustomization_step(kustomization)
        condition = _ready_condition(kustomization)
        if step is None:
            continue
        if condition is None:
            notes[step] = EngineNote("Flux has not reconciled this step yet")
            continue
        if condition.get("status") == "True":
            continue
        reason = str(condition.get("reason") or "")
        message = str(condition.get("message") or reason)
        notes[step] = EngineNote(message, warning=reason not in _FLUX_WAITING_REASONS)
    return notes
