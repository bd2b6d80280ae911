"""What a workload's pods say: readiness, problems a person must look at, checkpoints.

Pure functions over `kubernetes.client.V1Pod` models (duck-typed: nothing here imports the
client at run time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ilab_gitops.status.model import StepState

if TYPE_CHECKING:
    from kubernetes.client import V1ContainerStatus, V1Pod

#: Container waiting reasons after which the pod will not start without a fix (or a retry
#: that keeps failing): shown as a warning, the step counts as waiting.
START_ERRORS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
CRASH_LOOP = "CrashLoopBackOff"

#: A training step prints `ilab-gitops checkpoint: <path>` (to its log and its termination
#: message) each time it saves; the latest one is shown.
CHECKPOINT_MARKER = "ilab-gitops checkpoint:"
_CHECKPOINT_LINE = re.compile(rf"{re.escape(CHECKPOINT_MARKER)}\s*(\S+)")

_OWNER_LABELS = (
    "batch.kubernetes.io/job-name",
    "job-name",
    "training.kubeflow.org/job-name",
    "jobset.sigs.k8s.io/jobset-name",
)


@dataclass(frozen=True)
class PodProblem:
    """The most important thing wrong with a workload's pods."""

    state: StepState
    message: str


def owned_pods(pods: Iterable[V1Pod], kind: str, name: str) -> list[V1Pod]:
    """Pods of the workload `kind`/`name`: by owner reference, else by the controllers' labels."""
    out = []
    for pod in pods:
        meta = pod.metadata
        if meta is None:
            continue
        owners = meta.owner_references or []
        if any(o.kind == kind and o.name == name for o in owners):
            out.append(pod)
            continue
        labels = meta.labels or {}
        if any(labels.get(label) == name for label in _OWNER_LABELS):
            out.append(pod)
    return sorted(out, key=lambda p: (p.metadata.name or "") if p.metadata else "")


def _live(pod: V1Pod) -> bool:
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed")


def _ready(pod: V1Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def readiness(pods: Sequence[V1Pod]) -> tuple[int, int]:
    """(ready, total) over the pods that have not terminated."""
    live = [p for p in pods if _live(p)]
    return sum(1 for p in live if _ready(p)), len(live)


def _statuses(pod: V1Pod) -> list[V1ContainerStatus]:
    if pod.status is None:
        return []
    return [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]


def _pod_name(pod: V1Pod) -> str:
    return (pod.metadata.name if pod.metadata else None) or "<pod>"


def problem(pods: Sequence[V1Pod]) -> PodProblem | None:
    """A crash loop (restarting), a container that cannot start, or an unschedulable pod
    (both waiting); None when the pods look fine. Pods are checked in name order."""
    for pod in pods:
        if not _live(pod):
            continue
        for status in _statuses(pod):
            waiting = status.state.waiting if status.state else None
            if waiting is None or waiting.reason is None:
                continue
            detail = f"{_pod_name(pod)}/{status.name}: {waiting.reason}"
            if waiting.message:
                detail += f": {waiting.message}"
            if waiting.reason == CRASH_LOOP:
                return PodProblem(StepState.RESTARTING, detail)
            if waiting.reason in START_ERRORS:
                return PodProblem(StepState.WAITING, detail)
    for pod in pods:
        conditions = (pod.status.conditions if pod.status else None) or []
        for c in conditions:
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                return PodProblem(
                    StepState.WAITING, f"{_pod_name(pod)}: Unschedulable: {c.message or ''}"
                )
    return None


def _texts(pod: V1Pod, logs: Mapping[str, str]) -> list[str]:
    """Termination messages (previous run first) then the log tail, oldest to newest."""
    texts: list[str] = []
    for status in _statuses(pod):
        for state in (status.last_state, status.state):
            terminated = state.terminated if state else None
            if terminated is not None and terminated.message:
                texts.append(terminated.message)
    log = logs.get(_pod_name(pod))
    if log:
        texts.append(log)
    return texts


def latest_checkpoint(pods: Sequence[V1Pod], logs: Mapping[str, str]) -> str | None:
    """The last checkpoint marker any of the pods printed (master pods are read last, so
    their word wins)."""
    ordered = sorted(pods, key=lambda p: "master" in _pod_name(p))
    found: str | None = None
    for pod in ordered:
        for text in _texts(pod, logs):
            for match in _CHECKPOINT_LINE.finditer(text):
                found = match.group(1)
    return found
