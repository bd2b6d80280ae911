"""Step plans: what each pipeline step runs and the settings it reads.

Each step's outputs live under `/workspace/steps/<step name>`; since step names are content
addressed, a re-run writes a fresh folder and never clobbers what an earlier attempt produced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ilab_gitops.manifests import pods
from ilab_gitops.manifests.hashing import spec_sha256
from ilab_gitops.manifests.model import SDG_STEP, STEP_IDS, K8sObject
from ilab_gitops.manifests.workloads import StepPlan
from ilab_gitops.spec.base import ConfigMapKeyRef
from ilab_gitops.spec.environment import Environment, StepResources
from ilab_gitops.spec.pipeline_run import Phase, PipelineRun

PlanBuilder = Callable[[PipelineRun, Environment, Mapping[str, str]], StepPlan]


def step_dir(name: str) -> str:
    return f"{pods.WORKSPACE}/steps/{name}"


def _ca(ref_name: str, ref: ConfigMapKeyRef | None) -> list[K8sObject]:
    if ref is None:
        return []
    return [
        {
            "volume": pods.ca_volume(ref, ref_name),
            "mount": {"name": ref_name, "mountPath": f"{pods.CA_DIR}/{ref_name}", "readOnly": True},
        }
    ]


def _object_store_ca(env: Environment) -> tuple[list[K8sObject], str | None]:
    ref = env.spec.objectStore.caBundle
    volumes = _ca("s3-ca", ref)
    return volumes, (f"{pods.CA_DIR}/s3-ca/ca.crt" if volumes else None)


def _base_params(run: PipelineRun, step_id: str) -> K8sObject:
    return {
        "apiVersion": "gitops.instructlab.ai/v1alpha1",
        "run": run.metadata.name,
        "step": step_id,
    }


def _required_keys(envs: list[K8sObject], names: tuple[str, ...]) -> list[K8sObject]:
    """The preflight's list of Secret keys a later step requires, from their env vars."""
    out = []
    for item in envs:
        if item["name"] in names:
            ref = item["valueFrom"]["secretKeyRef"]
            out.append(
                {"env": item["name"], "secretKeyRef": {"name": ref["name"], "key": ref["key"]}}
            )
    return out


def _s3_check(field: str, prefix: str, secret: str, object_env: str | None = None) -> K8sObject:
    check: K8sObject = {"field": field, "prefix": prefix, "secretRef": {"name": secret}}
    if object_env is not None:
        check["objectKeyEnv"] = object_env
    return check


def _s3_required(prefix: str, *extra: str) -> tuple[str, ...]:
    return tuple(f"ILAB_{prefix}_{k}" for k in ("BUCKET", "ACCESS_KEY", "SECRET_KEY", *extra))


def output_prefix(run: PipelineRun, env: Environment) -> str:
    """The run's key prefix in the output bucket, derived from where the run lives, so a run
    re-applied elsewhere finds its artifacts."""
    out = run.spec.output.prefix.rstrip("/")
    return f"{out}/{env.spec.cluster}/{env.spec.namespace}/{run.metadata.name}"


def sdg_object_key(prefix: str, sdg_step_name: str) -> str:
    """Where the sdg step uploads its tarball (steps/sdg.py computes the same key)."""
    return f"{prefix}/sdg/{sdg_step_name}.tar"


def sdg(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    """In-cluster SDG (only with `sdgData.generate`): teacher + taxonomy -> SDG tarball."""
    spec = run.spec
    gen = spec.sdgData.generate
    if gen is None or env.spec.images.sdg is None:  # validation refuses both
        raise ValueError("the sdg step needs sdgData.generate and images.sdg")
    s3_volumes, s3_ca = _object_store_ca(env)
    secret = gen.teacherSecretRef.name
    # The first step of the run: its preflight also checks what every later step needs, so
    # a bad judge key or output bucket fails in seconds, not after hours of generation.
    teacher = ("ILAB_TEACHER_API_TOKEN", "ILAB_TEACHER_ENDPOINT", "ILAB_TEACHER_MODEL_NAME")
    envs = [
        pods.secret_env(name, secret, key, optional=True)
        for name, key in zip(teacher, ("api_token", "endpoint", "model_name"), strict=True)
    ]
    base = _base_model(run)
    envs += base.envs + _taxonomy_token(run)
    later = _later_needs(run, base)
    envs += later.envs
    params: K8sObject = {
        **_base_params(run, "sdg"),
        "taxonomy": {
            "repoUrl": spec.taxonomy.repoUrl,
            "commit": spec.taxonomy.commit,
            "baseBranch": gen.taxonomyBaseBranch,
        },
        # The base model's tokenizer sizes knowledge document chunks, as in ilab-on-ocp.
        "baseModel": base.model,
        "pipeline": gen.pipeline,
        "numInstructions": gen.numInstructions,
        "batchSize": gen.batchSize,
        "numWorkers": gen.numWorkers,
        "destinationPrefix": output_prefix(run, env),
        "caBundle": s3_ca,
        "teacherCaBundle": None,
        "preflight": later.preflight(envs, teacher, [], s3_ca),
        "attempt": [spec.attempt, spec.sdgData.attempt],
    }
    volumes = s3_volumes + base.volumes + later.volumes
    teacher_ca = _ca("teacher-ca", gen.caBundle)
    if teacher_ca:
        params["teacherCaBundle"] = f"{pods.CA_DIR}/teacher-ca/ca.crt"
        volumes += teacher_ca
    return StepPlan(
        step_id="sdg",
        module="sdg",
        image=env.spec.images.sdg,
        params=params,
        env=envs,
        resources=env.spec.resources.sdg,
        extra_volumes=volumes,
    )


@dataclass
class _BaseModel:
    """The base model's params, env and volumes, and what the preflight checks for it."""

    model: K8sObject
    envs: list[K8sObject] = field(default_factory=list)
    volumes: list[K8sObject] = field(default_factory=list)
    required: tuple[str, ...] = ()
    s3_checks: list[K8sObject] = field(default_factory=list)
    hf_check: K8sObject | None = None


def _base_model(run: PipelineRun) -> _BaseModel:
    """prepare fetches the base model; sdg reads its tokenizer. Secret keys are optional so
    prepare's preflight names a missing one instead of the pod not starting."""
    base = run.spec.baseModel
    out = _BaseModel({"source": base.kind})
    if base.s3 is not None:
        out.model["prefix"] = base.s3.prefix
        out.envs += pods.s3_env("MODEL", base.s3.secretRef.name, all_optional=True)
        out.required += _s3_required("MODEL")
        out.s3_checks.append(_s3_check("baseModel.s3.secretRef", "MODEL", base.s3.secretRef.name))
    elif base.huggingFace is not None:
        out.model["repo"] = base.huggingFace.repo
        out.model["revision"] = base.huggingFace.revision
        out.hf_check = {"repo": base.huggingFace.repo, "revision": base.huggingFace.revision}
        if base.huggingFace.tokenSecretRef is not None:
            ref = base.huggingFace.tokenSecretRef
            out.envs.append(pods.secret_env("HF_TOKEN", ref.name, ref.key, optional=True))
            out.required += ("HF_TOKEN",)
            out.hf_check["tokenEnv"] = "HF_TOKEN"
    elif base.pvc is not None:
        out.model["path"] = f"{pods.BASE_MODEL_DIR}/{base.pvc.path}"
        out.volumes.append(
            {
                "volume": {
                    "name": "base-model",
                    "persistentVolumeClaim": {"claimName": base.pvc.claimName, "readOnly": True},
                },
                "mount": {"name": "base-model", "mountPath": pods.BASE_MODEL_DIR, "readOnly": True},
            }
        )
    return out


def _taxonomy_token(run: PipelineRun) -> list[K8sObject]:
    ref = run.spec.taxonomy.credentialsSecretRef
    return [] if ref is None else [pods.secret_env("ILAB_TAXONOMY_TOKEN", ref.name, "token")]


@dataclass
class _LaterNeeds:
    """What the steps after the first need from outside the cluster, for the first step's
    preflight: Secret keys mounted as optional env vars (so a missing one is named instead of
    blocking the pod), buckets, the judge and the base model's Hugging Face revision."""

    run: PipelineRun
    base: _BaseModel
    envs: list[K8sObject]
    required: tuple[str, ...]
    s3_checks: list[K8sObject]
    volumes: list[K8sObject]

    def preflight(
        self,
        envs: list[K8sObject],
        required: tuple[str, ...],
        s3_checks: list[K8sObject],
        s3_ca: str | None,
    ) -> K8sObject:
        """The `preflight` params, with the step's own keys and buckets first."""
        spec = self.run.spec
        return {
            "secrets": _required_keys(envs, (*required, *self.required)),
            "s3": [*s3_checks, *self.s3_checks],
            "s3CaBundle": s3_ca,
            "judge": {
                "secretRef": {"name": spec.evaluation.judgeSecretRef.name},
                "caBundle": f"{pods.CA_DIR}/judge-ca/ca.crt" if self.volumes else None,
            },
            "huggingFace": self.base.hf_check,
            "taxonomyBaseBranch": spec.evaluation.final.taxonomyBaseBranch,
        }


def _later_needs(run: PipelineRun, base: _BaseModel) -> _LaterNeeds:
    """The base model (prepare), the output bucket (upload, publish), the judge (evaluation)."""
    spec = run.spec
    out_secret = spec.output.secretRef.name
    return _LaterNeeds(
        run,
        base,
        envs=[
            *pods.s3_env("OUTPUT", out_secret, all_optional=True),
            *_judge_env(run, optional=True),
        ],
        required=(
            *base.required,
            *_s3_required("OUTPUT"),
            "ILAB_JUDGE_API_TOKEN",
            "ILAB_JUDGE_ENDPOINT",
            "ILAB_JUDGE_MODEL_NAME",
        ),
        s3_checks=[
            *base.s3_checks,
            _s3_check("output.secretRef", "OUTPUT", out_secret),
        ],
        volumes=_ca("judge-ca", spec.evaluation.caBundle),
    )


def prepare(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    """prepare, whose first act is the preflight: the later steps' Secret keys are mounted
    here as optional env vars so a missing one is named instead of blocking the pod."""
    spec = run.spec
    s3_volumes, s3_ca = _object_store_ca(env)
    if spec.sdgData.secretRef is not None:
        sdg_secret = spec.sdgData.secretRef.name
        envs = pods.s3_env("SDG", sdg_secret, with_data_key=True, all_optional=True)
        required = _s3_required("SDG", "DATA_KEY")
        field_name = "sdgData.secretRef"
    else:  # generated by the sdg step into the run's output prefix
        sdg_secret = spec.output.secretRef.name
        envs = pods.s3_env("SDG", sdg_secret, all_optional=True)
        key = sdg_object_key(output_prefix(run, env), upstream[SDG_STEP])
        envs.insert(3, {"name": "ILAB_SDG_DATA_KEY", "value": key})
        required = _s3_required("SDG")
        field_name = "output.secretRef"
    s3_checks = [_s3_check(field_name, "SDG", sdg_secret, "ILAB_SDG_DATA_KEY")]
    base = _base_model(run)
    envs += base.envs + _taxonomy_token(run)
    volumes = list(s3_volumes) + base.volumes
    later = _later_needs(run, base)
    envs += later.envs
    volumes += later.volumes
    params = {
        **_base_params(run, "prepare"),
        "sdgData": {"sha256": spec.sdgData.sha256, "caBundle": s3_ca},
        "baseModel": base.model,
        "taxonomy": {"repoUrl": spec.taxonomy.repoUrl, "commit": spec.taxonomy.commit},
        "maxSeqLen": spec.training.maxSeqLen,
        "preflight": later.preflight(envs, required, s3_checks, s3_ca),
        "attempt": [spec.attempt, spec.sdgData.attempt],
    }
    return StepPlan(
        step_id="prepare",
        module="prepare",
        image=env.spec.images.fetch,
        params=params,
        env=envs,
        resources=env.spec.resources.prepare,
        extra_volumes=volumes,
    )


def _phase(
    run: PipelineRun,
    env: Environment,
    step_id: str,
    phase: Phase,
    *,
    model_dir: str,
    data_dir: str,
) -> StepPlan:
    training = run.spec.training
    gpus = training.nprocPerNode if env.spec.gpu.perNode else 0
    nnodes = training.nodes(env.spec.gpu.nodes)
    params = {
        **_base_params(run, step_id),
        "backend": training.backend,
        "cpuOffload": training.cpuOffload.model_dump(),
        "flashAttention": training.flashAttention,
        "fullState": training.checkpoints.fullState,
        "nnodes": nnodes,
        "nprocPerNode": training.nprocPerNode,
        "maxSeqLen": training.maxSeqLen,
        "maxBatchLen": training.maxBatchLen,
        "seed": training.seed,
        "saveSamples": training.saveSamples,
        "checkpointAtEpoch": training.checkpointAtEpoch,
        "epochs": phase.epochs,
        "effectiveBatchSize": phase.effectiveBatchSize,
        "learningRate": phase.learningRate,
        "warmupSteps": phase.warmupSteps,
        "modelPath": model_dir,
        "dataPath": data_dir,
        "attempt": [run.spec.attempt, phase.attempt],
    }
    return StepPlan(
        step_id=step_id,
        module="train",
        image=env.spec.images.train,
        params=params,
        env=[],
        resources=StepResources(cpu=training.resources.cpu, memory=training.resources.memory),
        kind=env.spec.trainingKind,
        gpus=gpus,
        nnodes=nnodes,
        nproc_per_node=training.nprocPerNode,
        queued=True,
    )


def train_phase_1(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    prepared = step_dir(upstream["prepare"])
    phase = run.spec.training.knowledge
    return _phase(
        run,
        env,
        "train-phase-1",
        phase,
        model_dir=f"{prepared}/model",
        data_dir=f"{prepared}/processed/knowledge",
    )


def train_phase_2(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    prepared = step_dir(upstream["prepare"])
    phase1 = step_dir(upstream["train-phase-1"])
    phase = run.spec.training.skills
    # The step resolves "highest samples_N checkpoint" under this folder at run time.
    return _phase(
        run,
        env,
        "train-phase-2",
        phase,
        model_dir=f"{phase1}/checkpoints/hf_format",
        data_dir=f"{prepared}/processed/skills",
    )


def _judge_env(run: PipelineRun, *, optional: bool = False) -> list[K8sObject]:
    secret = run.spec.evaluation.judgeSecretRef.name
    return [
        pods.secret_env("ILAB_JUDGE_API_TOKEN", secret, "api_token", optional=optional),
        pods.secret_env("ILAB_JUDGE_ENDPOINT", secret, "endpoint", optional=optional),
        pods.secret_env("ILAB_JUDGE_MODEL_NAME", secret, "model_name", optional=optional),
    ]


def _eval_plan(
    run: PipelineRun, env: Environment, step_id: str, module: str, params: K8sObject
) -> StepPlan:
    ca = _ca("judge-ca", run.spec.evaluation.caBundle)
    if ca:
        params["judgeCaBundle"] = f"{pods.CA_DIR}/judge-ca/ca.crt"
    kind = env.spec.queued_eval_kind
    gpus = env.spec.resources.evalGpus if env.spec.gpu.perNode else 0
    return StepPlan(
        step_id=step_id,
        module=module,
        image=env.spec.images.eval,
        params=params,
        env=_judge_env(run),
        resources=env.spec.resources.eval,
        kind=kind,
        gpus=gpus,
        nproc_per_node=1,
        queued=gpus > 0,
        extra_volumes=ca,
    )


def eval_mt_bench(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    mt = run.spec.evaluation.mtBench
    params = {
        **_base_params(run, "eval-mt-bench"),
        "checkpointsPath": f"{step_dir(upstream['train-phase-2'])}/checkpoints/hf_format",
        "maxWorkers": mt.maxWorkers,
        "mergeSystemUserMessage": mt.mergeSystemUserMessage,
        "attempt": [run.spec.attempt, mt.attempt],
    }
    return _eval_plan(run, env, "eval-mt-bench", "mt_bench", params)


def eval_final(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    final = run.spec.evaluation.final
    prepared = step_dir(upstream["prepare"])
    params = {
        **_base_params(run, "eval-final"),
        "mtBenchPath": step_dir(upstream["eval-mt-bench"]),
        "baseModelPath": f"{prepared}/model",
        "taxonomyPath": f"{prepared}/taxonomy",
        "sdgDataPath": f"{prepared}/data",
        "taxonomyBaseBranch": final.taxonomyBaseBranch,
        "fewShots": final.fewShots,
        "batchSize": final.batchSize,
        "maxWorkers": final.maxWorkers,
        "mergeSystemUserMessage": final.mergeSystemUserMessage,
        "attempt": [run.spec.attempt, final.attempt],
    }
    return _eval_plan(run, env, "eval-final", "final_eval", params)


def upload(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    out = run.spec.output
    volumes, ca = _object_store_ca(env)
    params = {
        **_base_params(run, "upload"),
        "mtBenchPath": step_dir(upstream["eval-mt-bench"]),
        "finalEvalPath": step_dir(upstream["eval-final"]),
        "destinationPrefix": output_prefix(run, env),
        "caBundle": ca,
        "attempt": [run.spec.attempt, out.attempt],
    }
    return StepPlan(
        step_id="upload",
        module="upload",
        image=env.spec.images.publish,
        params=params,
        env=pods.s3_env("OUTPUT", out.secretRef.name),
        resources=env.spec.resources.upload,
        extra_volumes=volumes,
    )


def publish(run: PipelineRun, env: Environment, upstream: Mapping[str, str]) -> StepPlan:
    pub = run.spec.publish
    volumes, ca = _object_store_ca(env)
    envs = pods.s3_env("OUTPUT", run.spec.output.secretRef.name)
    hf: K8sObject | None = None
    if pub.huggingFace is not None:
        hf = {
            "repo": pub.huggingFace.repo,
            "revision": pub.huggingFace.revision,
            "private": pub.huggingFace.private,
        }
        ref = pub.huggingFace.tokenSecretRef
        envs.append(pods.secret_env("HF_TOKEN", ref.name, ref.key))
    base = run.spec.baseModel
    params = {
        **_base_params(run, "publish"),
        "uploadPath": step_dir(upstream["upload"]),
        "huggingFace": hf,
        "github": pub.github.model_dump(),
        "taxonomy": {
            "repoUrl": run.spec.taxonomy.repoUrl,
            "commit": run.spec.taxonomy.commit,
            "pullRequests": list(run.spec.taxonomy.pullRequests),
        },
        "baseModel": base.model_dump(exclude_none=True, mode="json"),
        # results.json names the exact spec it came from.
        "specSha256": spec_sha256(run),
        "cluster": env.spec.cluster,
        "namespace": env.spec.namespace,
        "caBundle": ca,
        "attempt": [run.spec.attempt, pub.attempt],
    }
    return StepPlan(
        step_id="publish",
        module="publish",
        image=env.spec.images.publish,
        params=params,
        env=envs,
        resources=env.spec.resources.publish,
        extra_volumes=volumes,
    )


def run_plans(run: PipelineRun) -> tuple[tuple[str, PlanBuilder], ...]:
    """The run's steps in order: `sdg` first when the run generates its SDG data."""
    core = tuple(zip(STEP_IDS, PLANS, strict=True))
    return ((SDG_STEP, sdg), *core) if run.spec.sdgData.generate is not None else core


PLANS: tuple[PlanBuilder, ...] = (
    prepare,
    train_phase_1,
    train_phase_2,
    eval_mt_bench,
    eval_final,
    upload,
    publish,
)
