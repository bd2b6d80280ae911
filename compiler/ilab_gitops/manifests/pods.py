"""Pod building blocks shared by every step: security, volumes, secrets, scheduling, labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.spec.base import ConfigMapKeyRef
from ilab_gitops.spec.environment import Environment, StepResources

WORKSPACE = "/workspace"
PARAMS_DIR = "/etc/ilab"
PARAMS_FILE = f"{PARAMS_DIR}/params.json"
CA_DIR = "/etc/ilab/ca"
BASE_MODEL_DIR = "/base-model"

LABEL_RUN = "gitops.instructlab.ai/run"
LABEL_STEP = "gitops.instructlab.ai/step"
ANNOTATION_STEP_HASH = "gitops.instructlab.ai/step-sha256"
ANNOTATION_SPEC_SHA = "gitops.instructlab.ai/spec-sha256"
ANNOTATION_WAVE = "argocd.argoproj.io/sync-wave"
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY = "kueue.x-k8s.io/priority-class"


def labels(run: str, step: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "instructlab-pipeline",
        "app.kubernetes.io/instance": run,
        "app.kubernetes.io/component": step,
        "app.kubernetes.io/part-of": "ilab-gitops",
        "app.kubernetes.io/managed-by": "ilab-gitops",
        LABEL_RUN: run,
        LABEL_STEP: step,
    }


def workspace_claim(run: str) -> str:
    return f"{run}-workspace"


def secret_env(env_name: str, secret: str, key: str, *, optional: bool = False) -> K8sObject:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": env_name, "valueFrom": {"secretKeyRef": ref}}


def s3_env(
    prefix: str, secret: str, *, with_data_key: bool = False, all_optional: bool = False
) -> list[K8sObject]:
    """Env vars for an S3 secret in ilab-on-ocp's layout (values stay in the Secret).
    `all_optional`: a missing key reaches the step's preflight, which names it, instead of
    stopping the pod at CreateContainerConfigError."""
    keys = [
        ("BUCKET", "bucket", False),
        ("ACCESS_KEY", "access_key", False),
        ("SECRET_KEY", "secret_key", False),
        ("ENDPOINT", "endpoint", True),
        ("REGION", "region", True),
        ("VERIFY_TLS", "verify_tls", True),
    ]
    if with_data_key:
        keys.insert(3, ("DATA_KEY", "data_key", False))
    return [
        secret_env(f"ILAB_{prefix}_{suffix}", secret, key, optional=optional or all_optional)
        for suffix, key, optional in keys
    ]


def resources(step: StepResources, gpus: int, gpu_resource: str) -> K8sObject:
    amount: dict[str, Any] = {"cpu": step.cpu, "memory": step.memory}
    if gpus:
        amount[gpu_resource] = gpus
    return {"requests": dict(amount), "limits": dict(amount)}


def container(
    name: str,
    image: str,
    module: str,
    env: list[K8sObject],
    res: K8sObject,
) -> K8sObject:
    """A step container: runs `python -m ilab_gitops.steps.<module>` as a non-root user."""
    return {
        "name": name,
        "image": image,
        # A digest never changes; a development tag may have been pushed again.
        "imagePullPolicy": "IfNotPresent" if "@sha256:" in image else "Always",
        "command": ["python", "-m", f"ilab_gitops.steps.{module}"],
        "args": ["--params", PARAMS_FILE],
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "ILAB_PARAMS", "value": PARAMS_FILE},
            *env,
        ],
        "resources": res,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
        "volumeMounts": [],
    }


@dataclass(frozen=True)
class PodAccess:
    """An API identity for one pod (progress reporting only, manifests/progress.py): the
    ServiceAccount it runs as, the env var and the volume (`{"volume", "mount"}`) that bring
    its token. Every other pod runs as the namespace default without a token."""

    account: str
    env: K8sObject
    volume: K8sObject


def ca_volume(ref: ConfigMapKeyRef, volume: str) -> K8sObject:
    return {
        "name": volume,
        "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": "ca.crt"}]},
    }


def pod_spec(
    env: Environment,
    params_configmap: str,
    run: str,
    main: K8sObject,
    *,
    restart_policy: str,
    shm: bool = False,
    extra_volumes: list[K8sObject] | None = None,
    access: PodAccess | None = None,
) -> K8sObject:
    """A pod that meets the "restricted" Pod Security Standard and needs no API access (a
    progress-reporting pod gets its token as a volume; manifests/progress.py)."""
    volumes: list[K8sObject] = [
        {"name": "params", "configMap": {"name": params_configmap}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim(run)}},
    ]
    mounts: list[K8sObject] = [
        {"name": "params", "mountPath": PARAMS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "workspace", "mountPath": WORKSPACE},
    ]
    if shm:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    extras = [*(extra_volumes or []), *([access.volume] if access else [])]
    for volume in extras:
        volumes.append(volume["volume"])
        mounts.append(volume["mount"])
    if access is not None:
        main = {**main, "env": [*main["env"], access.env]}
    spec: K8sObject = {
        **({"serviceAccountName": access.account} if access else {}),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": restart_policy,
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            **_env_parts(env)[0],
        },
        "containers": [{**main, "volumeMounts": main["volumeMounts"] + mounts}],
        "volumes": volumes,
    }
    if env.spec.nodeSelector:
        spec["nodeSelector"] = dict(env.spec.nodeSelector)
    if env.spec.tolerations:
        spec["tolerations"] = [dict(t) for t in _env_parts(env)[1]]
    return spec


#: Per environment (by identity; environments are immutable): its pod security settings and
#: tolerations as plain data. Dumping them from the model for every pod was a tenth of
#: compile time; callers copy what they put into objects.
_ENV_PARTS: dict[int, tuple[Environment, tuple[K8sObject, list[K8sObject]]]] = {}


def _env_parts(env: Environment) -> tuple[K8sObject, list[K8sObject]]:
    hit = _ENV_PARTS.get(id(env))
    if hit is not None and hit[0] is env:
        return hit[1]
    parts = (
        env.spec.podSecurity.security_context(),
        [t.model_dump(exclude_none=True) for t in env.spec.tolerations],
    )
    if len(_ENV_PARTS) >= 64:
        _ENV_PARTS.clear()
    _ENV_PARTS[id(env)] = (env, parts)
    return parts


def template_meta(env: Environment, run: str, step: str) -> K8sObject:
    """Pod template metadata: the environment's pod labels and annotations, then ours."""
    meta: K8sObject = {"labels": {**env.spec.podLabels, **labels(run, step)}}
    if env.spec.podAnnotations:
        meta["annotations"] = dict(env.spec.podAnnotations)
    return meta


def object_meta(
    name: str, namespace: str, run: str, step: str, annotations: dict[str, str]
) -> K8sObject:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(run, step),
        "annotations": dict(annotations),
    }
