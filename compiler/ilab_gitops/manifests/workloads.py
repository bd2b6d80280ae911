"""Workload objects: a batch/v1 Job, a kubeflow.org/v1 PyTorchJob or a Trainer v2 TrainJob
around a step's pod."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ilab_gitops.manifests import pods, trainjob
from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.spec.environment import Environment, StepResources

WorkloadKind = Literal["Job", "PyTorchJob", "TrainJob"]


@dataclass(frozen=True)
class StepPlan:
    """What a step runs, before it has a name. The compiler hashes what this produces."""

    step_id: str
    module: str
    image: str
    params: K8sObject
    env: list[K8sObject]
    resources: StepResources
    kind: WorkloadKind = "Job"
    gpus: int = 0
    nnodes: int = 1
    nproc_per_node: int = 1
    queued: bool = False
    extra_volumes: list[K8sObject] = field(default_factory=list)
    #: The reporting pod's API identity (a PyTorchJob's Master only: rank 0 reports).
    access: pods.PodAccess | None = None


def workload(
    plan: StepPlan,
    env: Environment,
    run: str,
    name: str,
    meta_annotations: dict[str, str],
) -> K8sObject:
    """The Job, PyTorchJob or TrainJob running `plan`, named `name`."""
    meta = pods.object_meta(name, env.spec.namespace, run, plan.step_id, meta_annotations)
    kueue = env.spec.kueue
    if plan.queued and kueue is not None:
        meta["labels"][pods.KUEUE_QUEUE] = kueue.localQueue
        if kueue.priorityClass:
            meta["labels"][pods.KUEUE_PRIORITY] = kueue.priorityClass
    if plan.kind == "TrainJob":
        return trainjob.trainjob(plan, env, run, name, meta)
    template = _template(plan, env, run, name, plan.access)
    if plan.kind == "Job":
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "backoffLimit": 2,
                "completions": 1,
                "parallelism": 1,
                "template": template,
            },
        }
    restart = template["spec"]["restartPolicy"]
    replicas: K8sObject = {
        "Master": {"replicas": 1, "restartPolicy": restart, "template": template},
    }
    if plan.nnodes > 1:
        worker = template if plan.access is None else _template(plan, env, run, name, None)
        replicas["Worker"] = {
            "replicas": plan.nnodes - 1,
            "restartPolicy": restart,
            "template": worker,
        }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": meta,
        "spec": {
            "nprocPerNode": str(plan.nproc_per_node),
            "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "Running"},
            "pytorchReplicaSpecs": replicas,
        },
    }


def _template(
    plan: StepPlan, env: Environment, run: str, name: str, access: pods.PodAccess | None
) -> K8sObject:
    """The pod template of a Job or a PyTorchJob replica."""
    res = pods.resources(plan.resources, plan.gpus, env.spec.gpu.resourceName)
    container_name = "pytorch" if plan.kind == "PyTorchJob" else "step"
    main = pods.container(container_name, plan.image, plan.module, plan.env, res)
    pod = pods.pod_spec(
        env,
        name,
        run,
        main,
        restart_policy="OnFailure" if plan.kind == "PyTorchJob" else "Never",
        shm=plan.kind == "PyTorchJob",
        extra_volumes=plan.extra_volumes,
        access=access,
    )
    return {"metadata": pods.template_meta(env, run, plan.step_id), "spec": pod}


def params_configmap(
    plan: StepPlan,
    env: Environment,
    run: str,
    name: str,
    annotations: dict[str, str],
    *,
    text: str | K8sObject,
) -> K8sObject:
    """The step's settings as JSON; steps read these instead of long argument lists."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": pods.object_meta(name, env.spec.namespace, run, plan.step_id, annotations),
        "immutable": True,
        "data": {"params.json": text},
    }
