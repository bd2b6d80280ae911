"""Flux wiring: one Kustomization per step, chained with dependsOn and judged by CEL."""

from __future__ import annotations

from collections.abc import Sequence

from ilab_gitops.manifests import pods
from ilab_gitops.manifests.model import CompiledStep, K8sObject
from ilab_gitops.spec.environment import Environment

#: kstatus cannot judge PyTorchJob conditions; these CEL expressions can (GITOPS.md facts 3-4).
PYTORCHJOB_HEALTH: K8sObject = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "current": "has(status.conditions) && "
    "status.conditions.exists(c, c.type == 'Succeeded' && c.status == 'True')",
    "failed": "has(status.conditions) && "
    "status.conditions.exists(c, c.type == 'Failed' && c.status == 'True')",
    "inProgress": "!has(status.conditions) || "
    "!status.conditions.exists(c, (c.type == 'Succeeded' || c.type == 'Failed') "
    "&& c.status == 'True')",
}
TRAINJOB_HEALTH: K8sObject = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "current": "has(status.conditions) && "
    "status.conditions.exists(c, c.type == 'Complete' && c.status == 'True')",
    "failed": "has(status.conditions) && "
    "status.conditions.exists(c, c.type == 'Failed' && c.status == 'True')",
}


#: Flux's github provider takes the commit-status context from this annotation (see
#: notifications/flux.py), so statuses read `ilab/<run>/<step>` under both engines.
CONTEXT_ANNOTATION = "event.toolkit.fluxcd.io/ilab-context"


def status_context(run: str, step_id: str) -> str:
    return f"ilab/{run}/{step_id}"


def kustomization_name(run: str, step: CompiledStep) -> str:
    return f"{run}-{step.step_id}"


def flux_kustomizations(
    run: str, env: Environment, steps: Sequence[CompiledStep]
) -> tuple[K8sObject, ...]:
    flux = env.spec.flux
    out: list[K8sObject] = []
    for step in steps:
        spec: K8sObject = {
            "interval": flux.interval,
            "retryInterval": flux.retryInterval,
            "timeout": flux.timeout,
            "path": f"./{flux.renderedPath}/{env.metadata.name}/{run}/{step.folder}",
            "prune": True,
            "wait": True,
            "targetNamespace": env.spec.namespace,
            "sourceRef": {"kind": "GitRepository", "name": flux.sourceName},
            "healthCheckExprs": [dict(PYTORCHJOB_HEALTH), dict(TRAINJOB_HEALTH)],
        }
        if step.index > 0:
            spec["dependsOn"] = [{"name": kustomization_name(run, steps[step.index - 1])}]
        out.append(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {
                    "name": kustomization_name(run, step),
                    "namespace": flux.namespace,
                    "labels": pods.labels(run, step.step_id),
                    "annotations": {CONTEXT_ANNOTATION: status_context(run, step.step_id)},
                },
                "spec": spec,
            }
        )
    return tuple(out)
