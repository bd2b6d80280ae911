"""The compiler's output types: plain data, ready to render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

K8sObject = dict[str, Any]
#: The label on every cluster-wide object ilab-gitops prints (bootstrap, notifications).
PART_OF: dict[str, str] = {"app.kubernetes.io/part-of": "ilab-gitops"}

#: Pipeline steps in execution order: (id, folder, Argo CD sync wave).
STEP_IDS: tuple[str, ...] = (
    "prepare",
    "train-phase-1",
    "train-phase-2",
    "eval-mt-bench",
    "eval-final",
    "upload",
    "publish",
)
#: The optional first step of runs with `sdgData.generate`; it shifts every later step by one.
SDG_STEP = "sdg"
ALL_STEP_IDS: tuple[str, ...] = (SDG_STEP, *STEP_IDS)
WAVE_SPACING = 10


def step_folder(index: int, step_id: str) -> str:
    """Folder of a step inside `rendered/<run>/`: numbered so a listing shows the order."""
    return f"{index + 1:02d}-{step_id}"


def step_wave(index: int) -> int:
    return (index + 1) * WAVE_SPACING


@dataclass(frozen=True)
class CompiledStep:
    """One step: its content-addressed name, chain hash and Kubernetes objects."""

    step_id: str
    index: int
    name: str
    digest: str  # full sha256 hex of the chain up to and including this step
    objects: tuple[K8sObject, ...]

    @property
    def folder(self) -> str:
        return step_folder(self.index, self.step_id)

    @property
    def wave(self) -> int:
        return step_wave(self.index)


@dataclass(frozen=True)
class Manifests:
    """Everything compiled for one run."""

    run: str
    namespace: str
    spec_sha256: str
    steps: tuple[CompiledStep, ...]
    flux: tuple[K8sObject, ...] = field(default=())

    def objects(self) -> list[K8sObject]:
        """All cluster objects of the run (without the Flux wiring), in apply order."""
        return [obj for step in self.steps for obj in step.objects]
