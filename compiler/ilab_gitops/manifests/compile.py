"""`compile_run`: spec + environment -> manifests. Pure: no I/O, clock, env vars or randomness."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ilab_gitops.manifests import pods
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


def _step_objects(
    plan: StepPlan,
    env: Environment,
    run: str,
    name: str,
    annotations: dict[str, str],
    *,
    draft: bool = False,
) -> list[K8sObject]:
    """The step's objects. A draft (for hashing) keeps the params as data: the JSON text is a
    pure function of it, so hashing the data covers the same bytes without formatting twice."""
    params = {**plan.params, "stepName": name, "outputPath": step_dir(name)}
    text: Any = params if draft else pretty_json(params) + "\n"
    return [
        params_configmap(plan, env, run, name, annotations, text=text),
        workload(plan, env, run, name, annotations),
    ]


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
        plan = builder(run, env, names)
        annotations = {pods.ANNOTATION_WAVE: str(step_wave(index))}
        if step_id == "publish":
            annotations[pods.ANNOTATION_SPEC_SHA] = spec_sha
        # Hash the objects built with a placeholder name, then build them again with the
        # name derived from that hash (a text substitution could hit user strings too).
        draft = canonical_json(
            _step_objects(plan, env, name, _PLACEHOLDER, annotations, draft=True)
        )
        digest = chain(previous, draft)
        object_name = step_name(name, step_id, digest)
        objects = _step_objects(
            plan, env, name, object_name, {**annotations, pods.ANNOTATION_STEP_HASH: digest}
        )
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
