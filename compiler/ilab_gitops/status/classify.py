"""Cluster objects -> one `StepStatus` per step. Pure: no I/O, no clock (`now` is passed in).

Jobs and Pods arrive as the kubernetes client's models (`V1Job`, `V1Pod`); custom resources
(PyTorchJob, TrainJob, Argo CD Application, Flux Kustomization) as plain dicts, the shape the
API returns. Only conditions with status "True" count, as in the engines' health checks: a
resumed Job keeps a `Suspended=False` condition and is running, not suspended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ilab_gitops.manifests.model import ALL_STEP_IDS, SDG_STEP, STEP_IDS
from ilab_gitops.manifests.pods import KUEUE_QUEUE, LABEL_STEP
from ilab_gitops.status import engines, pods
from ilab_gitops.status.model import RunStatus, StepState, StepStatus

if TYPE_CHECKING:
    from kubernetes.client import V1Job, V1Pod

    from ilab_gitops.steps.progress import Progress

Obj = Mapping[str, Any]
TRAINING_KINDS = frozenset({"PyTorchJob", "TrainJob"})


@dataclass(frozen=True)
class RunObjects:
    """Everything read from the cluster for one run."""

    run: str
    namespace: str
    jobs: Sequence[V1Job] = ()
    pods: Sequence[V1Pod] = ()
    custom: Sequence[Obj] = ()  # PyTorchJobs and TrainJobs
    application: Obj | None = None
    kustomizations: Sequence[Obj] = ()
    logs: Mapping[str, str] = field(default_factory=dict)  # pod name -> log tail

    @property
    def empty(self) -> bool:
        return not (
            self.jobs or self.pods or self.custom or self.application or self.kustomizations
        )


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 from a custom resource (`2026-08-03T10:00:00Z`), or a client datetime."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _message(condition: Any) -> str:
    reason = getattr(condition, "reason", None) or ""
    text = getattr(condition, "message", None) or ""
    return f"{reason}: {text}" if reason and text else reason or text


# ------------------------------------------------------------------------- batch/v1 Job


def _job_state(job: V1Job) -> tuple[StepState, str, datetime | None]:
    """(state, message, finished) from the Job's own status."""
    status = job.status
    true = {c.type: c for c in (status.conditions if status else None) or [] if c.status == "True"}
    if "Failed" in true:
        return StepState.FAILED, _message(true["Failed"]), true["Failed"].last_transition_time
    if "FailureTarget" in true:
        failing = true["FailureTarget"]
        return StepState.FAILED, _message(failing), failing.last_transition_time
    if "Complete" in true:
        done = (status.completion_time if status else None) or true["Complete"].last_transition_time
        return StepState.SUCCEEDED, "completed", done
    if "SuccessCriteriaMet" in true:
        return StepState.RUNNING, "success criteria met; waiting for pods to terminate", None
    labels = (job.metadata.labels if job.metadata else None) or {}
    if "Suspended" in true or (job.spec is not None and job.spec.suspend):
        queue = labels.get(KUEUE_QUEUE)
        where = f" in Kueue queue {queue}" if queue else ""
        return StepState.QUEUED, f"suspended, waiting for admission{where}", None
    failed = (status.failed if status else None) or 0
    if failed:
        limit = job.spec.backoff_limit if job.spec else None
        of = f" of {limit + 1} allowed" if limit is not None else ""
        return StepState.RESTARTING, f"{failed} pod(s) failed{of}; retrying", None
    active = (status.active if status else None) or 0
    return StepState.RUNNING, f"{active} active pod(s)", None


def classify_job(job: V1Job, objects: RunObjects) -> StepStatus:
    meta = job.metadata
    name = (meta.name if meta else None) or ""
    step = ((meta.labels if meta else None) or {}).get(LABEL_STEP, "")
    state, message, finished = _job_state(job)
    started = job.status.start_time if job.status else None
    return _with_pods(
        StepStatus(
            step,
            state,
            "Job",
            name,
            started if state is not StepState.QUEUED else None,
            finished,
            message=message,
        ),
        pods.owned_pods(objects.pods, "Job", name),
        objects.logs,
    )


# ------------------------------------------------------------ PyTorchJob and TrainJob


def _true_conditions(obj: Obj) -> dict[str, Obj]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {
        str(c.get("type")): c
        for c in conditions
        if isinstance(c, Mapping) and c.get("status") == "True"
    }


def _cr_message(condition: Obj) -> str:
    reason = str(condition.get("reason") or "")
    text = str(condition.get("message") or "")
    return text or reason


def _custom_state(obj: Obj) -> tuple[StepState, str, Any]:
    """(state, message, finished time) from a PyTorchJob's or TrainJob's conditions."""
    true = _true_conditions(obj)
    status = obj.get("status") or {}
    if "Failed" in true:
        return (
            StepState.FAILED,
            _cr_message(true["Failed"]),
            true["Failed"].get("lastTransitionTime"),
        )
    for done in ("Succeeded", "Complete"):
        if done in true:
            finished = status.get("completionTime") or true[done].get("lastTransitionTime")
            return StepState.SUCCEEDED, _cr_message(true[done]), finished
    if "Suspended" in true:
        return StepState.QUEUED, _cr_message(true["Suspended"]), None
    if "Restarting" in true:
        return StepState.RESTARTING, _cr_message(true["Restarting"]), None
    if "Running" in true:
        return StepState.RUNNING, _cr_message(true["Running"]), None
    if "Created" in true:
        return StepState.RUNNING, "created; waiting for its pods to run", None
    return StepState.WAITING, "waiting for the training operator to report status", None


def classify_custom(obj: Obj, objects: RunObjects) -> StepStatus:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    name = str(meta.get("name") or "")
    step = str((meta.get("labels") or {}).get(LABEL_STEP, ""))
    state, message, finished = _custom_state(obj)
    started = parse_time((obj.get("status") or {}).get("startTime"))
    row = StepStatus(
        step,
        state,
        kind,
        name,
        started if state is not StepState.QUEUED else None,
        parse_time(finished),
        message=message,
    )
    return _with_pods(row, pods.owned_pods(objects.pods, kind, name), objects.logs)


# ------------------------------------------------------------------------ pods overlay


def _progress(owned: Sequence[V1Pod], logs: Mapping[str, str]) -> Progress | None:
    """The newest progress line in the pods' log tails (the master's word wins)."""
    from ilab_gitops.steps.progress import last_progress

    found: Progress | None = None
    for pod in sorted(owned, key=lambda p: "master" in ((p.metadata and p.metadata.name) or "")):
        text = logs.get((pod.metadata and pod.metadata.name) or "")
        found = (last_progress(text) if text else None) or found
    return found


def _with_pods(row: StepStatus, owned: Sequence[V1Pod], logs: Mapping[str, str]) -> StepStatus:
    ready, total = pods.readiness(owned)
    row = replace(row, pods_ready=ready, pods_total=total)
    if row.kind in TRAINING_KINDS:
        row = replace(row, checkpoint=pods.latest_checkpoint(owned, logs))
    if row.state in (StepState.RUNNING, StepState.RESTARTING):
        row = replace(row, progress=_progress(owned, logs))
    if row.state in (StepState.SUCCEEDED, StepState.FAILED, StepState.QUEUED):
        return row
    found = pods.problem(owned)
    if found is None:
        return row
    return replace(row, state=found.state, message=found.message, warning=True)


# ---------------------------------------------------------------------------- the run


def _created(obj: Any) -> tuple[str, str]:
    """Sort key: creation time, then name (newest last)."""
    if isinstance(obj, Mapping):
        meta = obj.get("metadata") or {}
        return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")
    meta = obj.metadata
    created = meta.creation_timestamp if meta else None
    return (created.isoformat().replace("+00:00", "Z") if created else ""), (
        meta.name if meta else ""
    ) or ""


def _workload_rows(objects: RunObjects) -> dict[str, StepStatus]:
    """Step -> row of its newest workload (an older attempt that is still there is ignored)."""
    workloads: list[Any] = [*objects.jobs, *objects.custom]
    rows: dict[str, StepStatus] = {}
    for obj in sorted(workloads, key=_created):
        row = (
            classify_custom(obj, objects)
            if isinstance(obj, Mapping)
            else classify_job(obj, objects)
        )
        if row.step:
            rows[row.step] = row
    return rows


def _step_order(seen: Sequence[str]) -> list[str]:
    known = ALL_STEP_IDS if SDG_STEP in seen else STEP_IDS
    extra = sorted(set(seen) - set(known))
    return [*known, *extra]


def classify_run(objects: RunObjects, now: datetime) -> RunStatus:
    """One row per step, in pipeline order; steps with no workload yet are waiting."""
    rows = _workload_rows(objects)
    notes: dict[str, engines.EngineNote] = {}
    lines: list[str] = []
    steps = _step_order(
        [*rows, *(s for k in objects.kustomizations if (s := engines.kustomization_step(k)))]
    )
    if objects.application is not None:
        lines.append(engines.application_line(objects.application))
        notes.update(engines.application_notes(objects.application, objects.run, steps))
    if objects.kustomizations:
        lines.append(engines.kustomizations_line(objects.kustomizations))
        notes.update(engines.kustomization_notes(objects.kustomizations))
    out: list[StepStatus] = []
    for step in steps:
        if step in rows:
            out.append(rows[step])
            continue
        note = notes.get(step, engines.EngineNote("not created yet"))
        out.append(StepStatus(step, StepState.WAITING, message=note.message, warning=note.warning))
    return RunStatus(objects.run, objects.namespace, now, tuple(out), tuple(lines))
