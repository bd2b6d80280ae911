"""The `PipelineRun` spec: what a model developer commits to the runs repo.

Defaults follow ilab-on-ocp's standalone script and Kubeflow pipeline, so a minimal spec
behaves like the reference pipeline.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from ilab_gitops.spec.base import (
    API_VERSION,
    Attempt,
    ConfigMapKeyRef,
    Dns1123Name,
    Metadata,
    SecretKeyRef,
    SecretRef,
    StrictModel,
)

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
GitCommit = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
ObjectKey = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^/\s][^\s]*$")
]
Quantity = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"),
]
AutoOrInt = Literal["auto"] | Annotated[int, Field(ge=1, le=4096)]
ParameterCount = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}(\.[0-9]{1,3})?[MB]$")]


class S3ModelSource(StrictModel):
    """Base model stored in S3-compatible storage under a prefix."""

    secretRef: SecretRef = Field(
        description=(
            "Secret with keys bucket, access_key, secret_key, endpoint, region, verify_tls."
        )
    )
    prefix: ObjectKey = Field(description="Object key prefix holding the model files.")


class HuggingFaceModelSource(StrictModel):
    """Base model from a Hugging Face repository, pinned to a commit."""

    repo: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*/[-A-Za-z0-9_.]+$")
    ] = Field(description="Repository id, `owner/name`.")
    revision: GitCommit = Field(
        description="Full 40-character commit sha: a branch or tag could move under a run."
    )
    tokenSecretRef: SecretKeyRef | None = Field(
        default=None, description="Token for gated or private repositories."
    )


# One path segment other than "..": not starting with ".", or "." alone or followed by a
# character other than ".", or ".." followed by more (such as "..." or "..cache").
_SEGMENT = r"(?:[^/\s.][^/\s]*|\.(?:[^/\s.][^/\s]*)?|\.\.[^/\s]+)"
#: A relative path that cannot climb out of the claim (the prepare pod mounts it read-only).
PVC_PATH_PATTERN = rf"^{_SEGMENT}(?:/+{_SEGMENT})*/?$"


class PvcModelSource(StrictModel):
    """Base model already present on a PersistentVolumeClaim."""

    claimName: Dns1123Name = Field(description="Existing PVC in the run's namespace.")
    path: Annotated[str, StringConstraints(pattern=PVC_PATH_PATTERN)] = Field(
        description=(
            "Relative path of the model directory inside the claim (no '..' segments; "
            "symlinks in the folder may only point at files inside it)."
        )
    )


class BaseModelSource(StrictModel):
    """Where the base model comes from: exactly one of s3, huggingFace, pvc."""

    s3: S3ModelSource | None = None
    huggingFace: HuggingFaceModelSource | None = None
    pvc: PvcModelSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [n for n in ("s3", "huggingFace", "pvc") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of s3, huggingFace, pvc"
                + (f" (found {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> str:
        if self.s3 is not None:
            return "s3"
        return "huggingFace" if self.huggingFace is not None else "pvc"


#: A git branch: "/"-separated names of letters, digits, "_", "-" and single inner dots, none
#: starting with "-" or "." (git would read "-x" as an option, and ".." walks out of .git).
_BRANCH_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*"
BranchName = Annotated[
    str,
    StringConstraints(max_length=255, pattern=rf"^{_BRANCH_PART}(?:/{_BRANCH_PART})*$"),
]


class SdgGenerate(StrictModel):
    """Synthetic data generation in the cluster, from the taxonomy at `taxonomy.commit`.

    Only the qna.yaml files that changed against the base branch are used, as `ilab data
    generate` does. Defaults follow ilab-on-ocp's Kubeflow pipeline.
    """

    teacherSecretRef: SecretRef = Field(
        description=(
            "Secret with keys api_token, endpoint (ending in /v1), model_name: the teacher "
            "model behind an OpenAI-compatible API (the judge's shape)."
        )
    )
    caBundle: ConfigMapKeyRef | None = Field(
        default=None, description="CA bundle for the teacher endpoint."
    )
    pipeline: Literal["simple", "full"] = Field(
        default="full", description="instructlab-sdg pipeline: full (reference) or simple."
    )
    numInstructions: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=30, description="Instructions to generate per seed example (scale factor)."
    )
    batchSize: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=128, description="Samples per teacher request batch."
    )
    numWorkers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2, description="Parallel workers (concurrent teacher batches)."
    )
    taxonomyBaseBranch: BranchName = Field(
        default="main", description="Branch the taxonomy changes are compared against."
    )


class SdgData(StrictModel):
    """Where the SDG data comes from: today's tarball in S3, or `generate` in the cluster.

    The tarball (top-level `data/`, `model/`, `taxonomy/`) is named by `secretRef`; with
    `generate` an `sdg` step before prepare writes the same layout to the run's output prefix.
    """

    secretRef: SecretRef | None = Field(
        default=None,
        description=(
            "S3 tarball: Secret with keys bucket, access_key, secret_key, data_key, endpoint, "
            "region, verify_tls (the layout ilab-on-ocp uses)."
        ),
    )
    sha256: Sha256 | None = Field(
        default=None, description="Expected sha256 of the tarball; the fetch fails on mismatch."
    )
    generate: SdgGenerate | None = Field(
        default=None, description="Generate the data in the cluster instead (an `sdg` step)."
    )
    attempt: Attempt = 0

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.secretRef is None) == (self.generate is None):
            raise ValueError(
                "set exactly one of secretRef (an SDG tarball in S3) and generate"
                + (" (found both)" if self.generate is not None else "")
            )
        if self.generate is not None and self.sha256 is not None:
            raise ValueError("sha256 applies to an S3 tarball, not to generate")
        return self

    @property
    def kind(self) -> Literal["s3", "generate"]:
        return "generate" if self.generate is not None else "s3"


class Taxonomy(StrictModel):
    """The taxonomy the SDG data was generated from, and the PRs it includes."""

    repoUrl: Annotated[str, StringConstraints(pattern=r"^https://[^\s@]+$")] = Field(
        description="HTTPS URL of the taxonomy repository (no credentials in the URL)."
    )
    commit: GitCommit = Field(description="Taxonomy commit the data was generated from.")
    pullRequests: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list,
        max_length=500,
        description="Taxonomy pull requests included in this run; results are posted back.",
    )
    credentialsSecretRef: SecretRef | None = Field(
        default=None, description="Secret with a `token` key for private taxonomy repos."
    )

    @model_validator(mode="after")
    def _unique_prs(self) -> Self:
        if len(set(self.pullRequests)) != len(self.pullRequests):
            raise ValueError("pullRequests lists a pull request more than once")
        return self


class CpuOffload(StrictModel):
    """Offload options; `params` exists only for FSDP."""

    optimizer: bool = Field(default=False, description="Offload optimizer state to CPU.")
    params: bool = Field(default=False, description="Offload parameters to CPU (FSDP only).")


class Phase(StrictModel):
    """Settings of one training phase."""

    epochs: Annotated[int, Field(ge=1, le=100)] = Field(description="Passes over the data.")
    effectiveBatchSize: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        description="Samples per optimizer step across all GPUs."
    )
    learningRate: Annotated[float, Field(gt=0, le=1)] = Field(description="Peak learning rate.")
    warmupSteps: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=1000, description="Linear warm-up steps before the peak learning rate."
    )
    attempt: Attempt = 0


def _knowledge() -> Phase:
    return Phase(epochs=7, effectiveBatchSize=128, learningRate=2e-5, warmupSteps=1000)


def _skills() -> Phase:
    return Phase(epochs=10, effectiveBatchSize=3840, learningRate=6e-6, warmupSteps=1000)


class WorkerResources(StrictModel):
    """CPU and memory per training pod (requests equal limits)."""

    cpu: Quantity = Field(default="8", description="CPU per pod (Kubernetes quantity).")
    memory: Quantity = Field(default="100Gi", description="Memory per pod (Kubernetes quantity).")


class CheckpointPolicy(StrictModel):
    """Which resumable training states (weights + optimizer) stay on the workspace volume."""

    fullState: Literal["none", "last", "everyEpoch"] = Field(
        default="last",
        description=(
            "Full training state (weights + optimizer, what a re-created pod resumes from). "
            "none: never saved, a restarted phase starts over; last: one per epoch, each older "
            "one deleted once the next is complete; everyEpoch: one per epoch, all kept."
        ),
    )


class Training(StrictModel):
    """Multi-phase training with instructlab-training (phase 1 knowledge, phase 2 skills)."""

    backend: Literal["fsdp", "deepspeed"] = Field(
        default="fsdp",
        description="Distributed training backend; deepspeed is refused until the train "
        "image installs DeepSpeed.",
    )
    cpuOffload: CpuOffload = Field(default_factory=CpuOffload)
    nnodes: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None,
        description=(
            "Number of nodes, 1 to 100 (PyTorchJob: one Master plus nnodes-1 Workers); at "
            "most, and by default, the environment's gpu.nodes."
        ),
    )
    nprocPerNode: Annotated[int, Field(ge=1, le=16)] = Field(
        default=2, description="Processes (GPUs) per node; at most the environment's GPUs/node."
    )
    resources: WorkerResources = Field(default_factory=WorkerResources)
    maxSeqLen: Annotated[int, Field(ge=128, le=1_048_576)] = Field(
        default=4096, description="Longest sample in tokens; longer samples are dropped."
    )
    maxBatchLen: Annotated[int, Field(ge=128, le=10_000_000)] = Field(
        default=5000, description="Maximum tokens per GPU per batch; must be >= maxSeqLen."
    )
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        default=42, description="Random seed for data order and initialisation."
    )
    saveSamples: Annotated[int, Field(ge=0)] = Field(
        default=250_000, description="Save a checkpoint every N samples (0: only per epoch)."
    )
    checkpointAtEpoch: bool = Field(
        default=True, description="Also save a checkpoint at the end of every epoch."
    )
    flashAttention: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "auto: flash attention where flash_attn imports and the GPU supports it (compute "
            "capability 8.x or 9.0, what instructlab-training 0.16.2 accepts), else train "
            "without it and say so in the log and the step's marker; on: fail at once when it "
            "cannot be used; off: never."
        ),
    )
    checkpoints: CheckpointPolicy = Field(default_factory=CheckpointPolicy)
    modelParameters: ParameterCount | None = Field(
        default=None,
        description=(
            "Parameter count of the base model, e.g. 8B or 350M; validate estimates the "
            "checkpoints' disk use from it and compares it to the environment's storage.size."
        ),
    )
    knowledge: Phase = Field(default_factory=_knowledge, description="Phase 1.")
    skills: Phase = Field(
        default_factory=_skills,
        description="Phase 2; starts from the highest samples_N checkpoint of phase 1.",
    )

    def nodes(self, environment_nodes: int) -> int:
        """nnodes as set, else the environment's node count."""
        return self.nnodes if self.nnodes is not None else environment_nodes

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.maxBatchLen < self.maxSeqLen:
            raise ValueError(
                f"maxBatchLen ({self.maxBatchLen}) must be >= maxSeqLen ({self.maxSeqLen})"
            )
        if self.cpuOffload.params and self.backend != "fsdp":
            raise ValueError("cpuOffload.params is only supported with the fsdp backend")
        if self.backend == "deepspeed":
            # The train image has no DeepSpeed (runtime_images/README.md): refuse it here
            # rather than fail at the optimizer after the GPUs are taken.
            raise ValueError(
                "backend (deepspeed) is not supported yet: the train image does not install "
                "DeepSpeed; use fsdp"
            )
        return self


_MAX_WORKERS = "Concurrent judge requests; auto picks from the CPU count."
_MERGE = "Merge system and user messages (for judge models without a system role)."


class MtBench(StrictModel):
    """MT-Bench over every phase-2 checkpoint; the best becomes the candidate."""

    maxWorkers: AutoOrInt = Field(default="auto", description=_MAX_WORKERS)
    mergeSystemUserMessage: bool = Field(default=False, description=_MERGE)
    attempt: Attempt = 0


class FinalEval(StrictModel):
    """MT-Bench-Branch and MMLU-Branch: candidate against the base model."""

    maxWorkers: AutoOrInt = Field(default="auto", description=_MAX_WORKERS)
    mergeSystemUserMessage: bool = Field(default=False, description=_MERGE)
    fewShots: Annotated[int, Field(ge=0, le=25)] = Field(
        default=5, description="Few-shot examples per MMLU-Branch question."
    )
    batchSize: AutoOrInt = Field(default="auto", description="MMLU-Branch batch size.")
    taxonomyBaseBranch: BranchName = Field(
        default="main", description="Taxonomy branch the run's changes are compared against."
    )
    attempt: Attempt = 0


class Evaluation(StrictModel):
    """Evaluation settings; the judge model is reached through a Secret."""

    judgeSecretRef: SecretRef = Field(
        description="Secret with keys api_token, endpoint (ending in /v1), model_name."
    )
    caBundle: ConfigMapKeyRef | None = Field(
        default=None, description="CA bundle for the judge endpoint."
    )
    mtBench: MtBench = Field(default_factory=MtBench)
    final: FinalEval = Field(default_factory=FinalEval)


class Output(StrictModel):
    """Where the trained model and evaluation results are uploaded."""

    secretRef: SecretRef = Field(
        description="Secret with keys bucket, access_key, secret_key, endpoint, region, verify_tls."
    )
    prefix: ObjectKey = Field(
        default="ilab-runs", description="Key prefix; the run's cluster/namespace/name follows."
    )
    attempt: Attempt = 0


class HuggingFacePublish(StrictModel):
    """Publish the candidate model to a Hugging Face repository."""

    repo: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*/[-A-Za-z0-9_.]+$")
    ] = Field(description="Repository id, `owner/name`; created when missing.")
    revision: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")] = (
        Field(description="Branch to publish to, e.g. release-20261124.")
    )
    tokenSecretRef: SecretKeyRef = Field(description="Token with write access to the repo.")
    private: bool = Field(default=True, description="Create the repository as private.")


class GitHubPublish(StrictModel):
    """What the runs-repo workflows do with the results on GitHub."""

    commentOnPullRequests: bool = Field(
        default=True, description="Post eval results to the run's taxonomy pull requests."
    )
    createRelease: bool = Field(
        default=True, description="Create a GitHub release with the changelog in the runs repo."
    )


class Publish(StrictModel):
    """Publishing of the candidate and its results."""

    huggingFace: HuggingFacePublish | None = None
    github: GitHubPublish = Field(default_factory=GitHubPublish)
    attempt: Attempt = 0


class PipelineRunSpec(StrictModel):
    """Everything one training run needs."""

    environment: Dns1123Name = Field(
        description="Name of the cluster profile in environments/<name>.yaml."
    )
    attempt: Attempt = Field(default=0, description="Bump to re-run every step.")
    baseModel: BaseModelSource
    sdgData: SdgData
    taxonomy: Taxonomy
    training: Training = Field(default_factory=Training)
    evaluation: Evaluation
    output: Output
    publish: Publish = Field(default_factory=Publish)


class PipelineRun(StrictModel):
    """A training run: the file a model developer adds as runs/<name>.yaml."""

    apiVersion: Literal["gitops.instructlab.ai/v1alpha1"] = Field(
        description=f"Always {API_VERSION}."
    )
    kind: Literal["PipelineRun"] = Field(description="Always PipelineRun.")
    metadata: Metadata
    spec: PipelineRunSpec
