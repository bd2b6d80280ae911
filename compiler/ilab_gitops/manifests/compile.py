"""`compile_run`: spec + environment -> manifests. Pure: no I/O, clock, env vars or randomness."""

from __future__ import annotations

from collections.abc import Callable

from ilab_gitops.manifests import pods, progress
from ilab_gitops.manifests.flux import flux_kustomizations
from ilab_gitops.manifests.hashing import (
    canonical_json,
    chain,
    chain_seed,
    pretty_json,
    spec_sha256,
)
from ilab_gitops.manifests.model import CompiledStep, K8sObject, Manifests, step_wave
from ilab_gitops.manifests.steps import run_plans, step_dir
from ilab_gitops.manifests.workloads import StepPlan, params_configmap, workload
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

_PLACEHOLDER = "step-name-placeholder"


def step_name(run: str, step_id: str, digest: str) -> str:
    return f"{run}-{step_id}-{digest[:8]}"


def _draft_objects(
    plan: StepPlan, env: Environment, run: str, annotations: dict[str, str]
) -> list[K8sObject]:
    """The step's objects under a placeholder name, params kept as data: what the hash covers.

    The params' JSON text is a pure function of the data, so hashing the data covers the
    same bytes; `_name_objects` then turns this draft into the final objects in place.
    """
    params = {**plan.params, "stepName": _PLACEHOLDER, "outputPath": step_dir(_PLACEHOLDER)}
    return [
        params_configmap(plan, env, run, _PLACEHOLDER, annotations, text=params),
        workload(plan, env, run, _PLACEHOLDER, annotations),
    ]


def _pod_templates(obj: K8sObject) -> list[K8sObject]:
    """The pod templates of a Job or PyTorchJob (Master and Worker may share one); for a
    TrainJob, its pod overrides (which hold the volumes), shaped like templates."""
    spec = obj["spec"]
    if "template" in spec:
        return [spec["template"]]
    if "podSpecOverrides" in spec:
        return [{"spec": override} for override in spec["podSpecOverrides"]]
    return [replica["template"] for replica in spec["pytorchReplicaSpecs"].values()]


def _name_objects(objects: list[K8sObject], name: str, digest: str) -> None:
    """Put the step's name where the draft has the placeholder, and its hash annotation.

    Exactly the places `params_configmap` and `workload` use the name: both objects'
    `metadata.name`, the params' `stepName` and `outputPath`, and the params volume of each
    pod template. Only these fields are touched, never user strings; tests compare the result
    with building every object again under the final name.
    """
    configmap, work = objects
    params = configmap["data"]["params.json"]
    params["stepName"] = name
    params["outputPath"] = step_dir(name)
    configmap["data"]["params.json"] = pretty_json(params) + "\n"
    for meta in (configmap["metadata"], work["metadata"]):
        meta["name"] = name
        meta["annotations"][pods.ANNOTATION_STEP_HASH] = digest
    for template in _pod_templates(work):
        for volume in template["spec"]["volumes"]:
            if volume["name"] == "params":
                volume["configMap"]["name"] = name


def workspace_pvc(
    run: PipelineRun, env: Environment, wave: int, step_id: str = "prepare"
) -> K8sObject:
    """The run's shared volume: applied with its first consumer, never pruned or deleted."""
    storage = env.spec.storage
    meta = pods.object_meta(
        pods.workspace_claim(run.metadata.name),
        env.spec.namespace,
        run.metadata.name,
        step_id,
        {
            pods.ANNOTATION_WAVE: str(wave),
            "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
            "kustomize.toolkit.fluxcd.io/prune": "disabled",
            "helm.sh/resource-policy": "keep",
        },
    )
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": {
            "accessModes": [storage.accessMode],
            "storageClassName": storage.storageClassName,
            "resources": {"requests": {"storage": storage.size}},
        },
    }


def isolation_policy(
    run: PipelineRun, env: Environment, wave: int, step_id: str = "prepare"
) -> K8sObject:
    """Only the run's own pods may connect to its pods: the PyTorch rendezvous store and the
    evaluation servers have no authentication of their own. Outbound traffic stays open
    (S3, Hugging Face, the judge)."""
    name = run.metadata.name
    own_pods = {"matchLabels": {pods.LABEL_RUN: name}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pods.object_meta(
            f"{name}-isolation",
            env.spec.namespace,
            name,
            step_id,
            {pods.ANNOTATION_WAVE: str(wave)},
        ),
        "spec": {
            "podSelector": own_pods,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": own_pods}]}],
        },
    }


def compile_run(run: PipelineRun, env: Environment) -> Manifests:
    """Compile one run for one environment into ordered, content-addressed manifests."""
    name = run.metadata.name
    spec_sha = spec_sha256(run)
    previous = chain_seed(name, run.spec.attempt)
    names: dict[str, str] = {}
    steps: list[CompiledStep] = []
    plans: tuple[tuple[str, Callable[..., StepPlan]], ...] = run_plans(run)
    for index, (step_id, builder) in enumerate(plans):
        plan = progress.with_access(builder(run, env, names), env, name)
        annotations = {pods.ANNOTATION_WAVE: str(step_wave(index))}
        if step_id == "publish":
            annotations[pods.ANNOTATION_SPEC_SHA] = spec_sha
        # Build once under a placeholder name, hash that, then put the derived name in.
        objects = _draft_objects(plan, env, name, annotations)
        digest = chain(previous, canonical_json(objects))
        object_name = step_name(name, step_id, digest)
        _name_objects(objects, object_name, digest)
        # Outside the hash, like the workspace: objects that follow from the step's name.
        objects[:0] = progress.step_objects(name, env, step_id, object_name, step_wave(index))
        if index == 0:
            objects[:0] = [
                workspace_pvc(run, env, step_wave(index), step_id),
                isolation_policy(run, env, step_wave(index), step_id),
            ]
        names[step_id] = object_name
        steps.append(CompiledStep(step_id, index, object_name, digest, tuple(objects)))
        previous = digest
    compiled = tuple(steps)
    flux = flux_kustomizations(name, env, compiled) if "flux" in env.spec.engines else ()
    return Manifests(
        run=name, namespace=env.spec.namespace, spec_sha256=spec_sha, steps=compiled, flux=flux
    )
