"""The `Environment` profile: what a cluster offers, kept apart from what a run asks for."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from ilab_gitops.spec.base import (
    ConfigMapKeyRef,
    Dns1123Name,
    StrictModel,
)
from ilab_gitops.spec.pipeline_run import Quantity

IMAGE_RE = (
    r"^[a-z0-9][A-Za-z0-9_.-]*(:[0-9]+)?(/[A-Za-z0-9_.-]+)+"  # registry[:port]/path
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"  # [:tag][@digest]
)
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
]
Image = Annotated[str, StringConstraints(max_length=512, pattern=IMAGE_RE)]

#: Namespaces that belong to Kubernetes, the GitOps engines or cluster add-ons: a run applied
#: there would sit beside their service accounts and secrets (the engines' own namespaces too).
SYSTEM_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "argocd",
        "openshift-gitops",
        "flux-system",
        "kueue-system",
        "kubeflow",
        "cert-manager",
        "gatekeeper-system",
        "istio-system",
        "openshift",
    }
)
#: Prefixes reserved by Kubernetes (kube-*) and OpenShift (openshift-*).
SYSTEM_NAMESPACE_PREFIXES = ("kube-", "openshift-")


def is_system_namespace(name: str) -> bool:
    """True for the namespaces of Kubernetes, the engines and common cluster add-ons."""
    return name in SYSTEM_NAMESPACES or name.startswith(SYSTEM_NAMESPACE_PREFIXES)


#: Kubernetes minor versions whose schemas the validator bundles.
KubernetesVersion = Literal[
    "1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37"
]


class Storage(StrictModel):
    """Shared ReadWriteMany volume holding data, checkpoints and eval outputs of a run."""

    storageClassName: Dns1123Name = Field(description="A storage class that offers RWX volumes.")
    size: Quantity = Field(default="1Ti", description="Size of each run's workspace volume.")
    accessMode: Literal["ReadWriteMany", "ReadWriteOnce"] = Field(
        default="ReadWriteMany",
        description="ReadWriteOnce only for single-node clusters (every pod on one node).",
    )


class Gpu(StrictModel):
    """GPU resource offered by the nodes."""

    resourceName: LabelKey = Field(
        default="nvidia.com/gpu", description="Extended resource name of a GPU."
    )
    perNode: Annotated[int, Field(ge=0, le=16)] = Field(
        description="GPUs per node; 0 for CPU-only development clusters."
    )
    nodes: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1,
        description=(
            "Nodes a run may train on at once: the default and the upper bound of "
            "training.nnodes (1: a single-node cluster, whose jobs never get Workers)."
        ),
    )


class Toleration(StrictModel):
    """A pod toleration (same fields as Kubernetes)."""

    key: LabelKey | None = Field(default=None, description="Taint key; empty matches all.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Match operator.")
    value: LabelValue | None = Field(default=None, description="Taint value (with Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect; empty matches all."
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Self:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator Exists must not set value")
        return self


class Kueue(StrictModel):
    """Kueue admission: GPU steps are labelled with the LocalQueue and wait for quota."""

    localQueue: Dns1123Name = Field(description="Kueue LocalQueue in the runs namespace.")
    priorityClass: Dns1123Name | None = Field(
        default=None, description="Kueue WorkloadPriorityClass for the run's workloads."
    )


class Trainer(StrictModel):
    """Kubeflow Trainer v2 settings (trainingKind TrainJob)."""

    runtime: Dns1123Name = Field(
        default="ilab-torch-distributed",
        description=(
            "ClusterTrainingRuntime the TrainJobs reference; `ilab-gitops bootstrap` prints it "
            "for the platform owner to apply (a name of its own, so Trainer's stock "
            "torch-distributed runtime stays untouched)."
        ),
    )


class ObjectStore(StrictModel):
    """Cluster-wide object store settings applied to every S3 access."""

    caBundle: ConfigMapKeyRef | None = Field(
        default=None, description="CA bundle for a private S3 endpoint."
    )


Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]


class Flux(StrictModel):
    """How the rendered runs are wired into Flux."""

    namespace: Dns1123Name = Field(
        default="flux-system", description="Namespace of the Kustomizations and the source."
    )
    sourceName: Dns1123Name = Field(
        default="ilab-runs", description="GitRepository holding the runs repo."
    )
    renderedPath: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    ] = Field(default="rendered", description="Folder of the rendered runs inside the repo.")
    interval: Duration = Field(default="10m", description="How often Flux re-applies a step.")
    timeout: Duration = Field(
        default="5m", description="Health-check timeout per reconcile; keep it short."
    )
    retryInterval: Duration = Field(
        default="1m", description="How soon Flux checks again while a step is not ready."
    )


class Images(StrictModel):
    """Step images, pinned by digest (`@sha256:...`)."""

    fetch: Image = Field(description="Runs the prepare step (S3/HF fetch, data processing).")
    train: Image = Field(description="Runs both training phases.")
    eval: Image = Field(description="Runs MT-Bench and the final evaluation.")
    publish: Image = Field(description="Runs the upload and publish steps.")
    sdg: Image | None = Field(
        default=None,
        description="Runs the optional sdg step (runs with `sdgData.generate` need it).",
    )


class StepResources(StrictModel):
    """CPU and memory of a non-training step (requests equal limits)."""

    cpu: Quantity = Field(default="4", description="CPU (Kubernetes quantity).")
    memory: Quantity = Field(default="16Gi", description="Memory (Kubernetes quantity).")


def _eval_resources() -> StepResources:
    return StepResources(cpu="8", memory="64Gi")


class Resources(StrictModel):
    """Resources of the non-training steps."""

    prepare: StepResources = Field(default_factory=StepResources)
    eval: StepResources = Field(default_factory=_eval_resources)
    upload: StepResources = Field(default_factory=StepResources)
    publish: StepResources = Field(default_factory=StepResources)
    sdg: StepResources = Field(default_factory=StepResources)
    evalGpus: Annotated[int, Field(ge=0, le=16)] = Field(
        default=1, description="GPUs for each evaluation pod (serving the candidate and base)."
    )


class PodSecurity(StrictModel):
    """Pod-level identity. Leave unset on OpenShift, whose SCC assigns UIDs per namespace."""

    runAsUser: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="UID of every step container."
    )
    runAsGroup: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        default=None, description="Primary GID of every step container."
    )
    fsGroup: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        default=None, description="Group that owns mounted volumes."
    )
    supplementalGroups: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Extra GIDs of every step process, e.g. the group that owns an NFS export which "
            "ignores fsGroup."
        ),
    )
    fsGroupChangePolicy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None,
        description=(
            "OnRootMismatch skips the recursive ownership change of a large volume whose root "
            "already has the right group."
        ),
    )

    def security_context(self) -> dict[str, object]:
        """The fields set, as a pod securityContext (empty lists left out)."""
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if v != []}


#: Pod label and annotation prefixes the compiler owns.
_LABELS = ("app.kubernetes.io/", "gitops.instructlab.ai/", "kueue.x-k8s.io/")
_ANNOTATIONS = ("gitops.instructlab.ai/", "kueue.x-k8s.io/", "argocd.argoproj.io/")


class EnvironmentSpec(StrictModel):
    """A cluster profile."""

    cluster: Dns1123Name = Field(description="Cluster name; part of the output path in S3.")
    namespace: Dns1123Name = Field(description="Namespace the runs are applied to.")
    kubernetesVersion: KubernetesVersion = Field(
        description="Kubernetes minor version the manifests are validated against."
    )
    engines: list[Literal["argocd", "flux"]] = Field(
        min_length=1, max_length=2, description="GitOps engines that apply the runs."
    )
    storage: Storage
    gpu: Gpu
    nodeSelector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Node labels every step pod requires."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints every step pod tolerates (e.g. GPU nodes)."
    )
    kueue: Kueue | None = None
    trainingKind: Literal["PyTorchJob", "TrainJob"] = Field(
        default="PyTorchJob",
        description=(
            "Training workload kind: a Kubeflow Training Operator PyTorchJob (kubeflow.org/v1) "
            "or a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1) referencing "
            "trainer.runtime."
        ),
    )
    trainer: Trainer = Field(
        default_factory=Trainer,
        description="Kubeflow Trainer v2 settings; only with trainingKind TrainJob.",
    )
    evaluationKind: Literal["auto", "Job", "PyTorchJob"] = Field(
        default="auto",
        description=(
            "Workload kind of the GPU evaluation steps. auto: a Master-only PyTorchJob when "
            "Kueue queues it under Flux (Flux cannot judge a queued Job), else a Job."
        ),
    )
    objectStore: ObjectStore = Field(default_factory=ObjectStore)
    flux: Flux = Field(default_factory=Flux)
    images: Images
    allowTagImages: bool = Field(
        default=False, description="Development only: accept images without a digest."
    )
    allowSystemNamespace: bool = Field(
        default=False,
        description=(
            "Opt in to a system namespace (kube-system, default, argocd, flux-system, ...) "
            "as the runs namespace; refused otherwise."
        ),
    )
    allowTolerateAllTaints: bool = Field(
        default=False,
        description=(
            "Opt in to a toleration with operator Exists and no key, which tolerates every "
            "taint (control-plane and dedicated nodes too); refused otherwise."
        ),
    )
    commitStatusProgress: bool = Field(
        default=False,
        description=(
            "Argo CD only: the training and MT-Bench pods write their progress "
            '("epoch 3/7, 41 %") into a ConfigMap of the step, which the step\'s GitHub commit '
            "status shows while it runs. Gives those pods a service-account token that may only "
            "patch their own step's progress ConfigMap; off, no step pod has an API token."
        ),
    )
    resources: Resources = Field(default_factory=Resources)
    podSecurity: PodSecurity = Field(default_factory=PodSecurity)
    podLabels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=64,
        description=(
            "Labels on every step pod (not on the Job), e.g. for a mesh or cost reporting; "
            "ilab-gitops's own label keys are refused."
        ),
    )
    podAnnotations: dict[LabelKey, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=64,
        description=(
            'Annotations on every step pod, e.g. sidecar.istio.io/inject: "false" (a sidecar '
            "would keep a finished Job's pod running)."
        ),
    )

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if len(set(self.engines)) != len(self.engines):
            raise ValueError("engines lists an engine more than once")
        if not self.allowTagImages:
            for step, image in self.images.model_dump().items():
                if image is not None and "@sha256:" not in image:
                    raise ValueError(
                        f"images.{step} ({image}) is not pinned by digest; add @sha256:... "
                        "or set allowTagImages: true for development"
                    )
        if self.trainingKind != "TrainJob" and self.trainer != Trainer():
            raise ValueError(
                f"trainer is set but trainingKind is {self.trainingKind}; set trainingKind: "
                "TrainJob to use Kubeflow Trainer v2, or remove trainer"
            )
        if self.commitStatusProgress and "argocd" not in self.engines:
            raise ValueError(
                "commitStatusProgress needs argocd in engines: Flux posts no commit status "
                "while a step runs, so nothing would show the progress"
            )
        if self.kueue is not None and "flux" in self.engines and self.evaluationKind == "Job":
            raise ValueError(
                "evaluationKind Job with kueue under flux: Flux treats a suspended (queued) Job "
                "as ready, so later steps would start early; use auto or PyTorchJob"
            )
        return self

    @model_validator(mode="after")
    def _pod_metadata(self) -> Self:
        taken = [f"podLabels sets {k}" for k in sorted(self.podLabels) if k.startswith(_LABELS)]
        taken += [
            f"podAnnotations sets {k}"
            for k in sorted(self.podAnnotations)
            if k.startswith(_ANNOTATIONS)
        ]
        if taken:
            raise ValueError(
                "; ".join(taken) + ": ilab-gitops sets these keys itself (reserved: labels "
                f"{', '.join(_LABELS)}; annotations {', '.join(_ANNOTATIONS)})"
            )
        return self

    @property
    def queued_eval_kind(self) -> Literal["Job", "PyTorchJob"]:
        """The evaluation workload kind after resolving `auto`."""
        if self.evaluationKind != "auto":
            return self.evaluationKind
        if self.kueue is not None and "flux" in self.engines:
            return "PyTorchJob"
        return "Job"


class EnvironmentMetadata(StrictModel):
    """Profile metadata; the name is what runs refer to in spec.environment."""

    name: Dns1123Name


class Environment(StrictModel):
    """A cluster profile: environments/<name>.yaml."""

    apiVersion: Literal["gitops.instructlab.ai/v1alpha1"] = Field(
        description="Always gitops.instructlab.ai/v1alpha1."
    )
    kind: Literal["Environment"] = Field(description="Always Environment.")
    metadata: EnvironmentMetadata
    spec: EnvironmentSpec
