"""Kubeflow Trainer v2 output: the TrainJob of a training phase and the ClusterTrainingRuntime
it references.

A TrainJob (trainer.kubeflow.org/v1alpha1, Trainer 2.0) can only override a pod's env, volumes,
mounts, scheduling and the trainer's command/image/resources; pod and container security come
from the runtime. So `bootstrap` prints the runtime (restricted pod security, the Environment's
pod identity, labels and annotations) and every TrainJob references it by name. Trainer's torch
plugin sets PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK and PET_MASTER_ADDR/PORT on the
`node` container, which is what steps/train.py reads for torchrun (as under PyTorchJob).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilab_gitops.manifests import pods
from ilab_gitops.manifests.model import K8sObject
from ilab_gitops.spec.environment import Environment

if TYPE_CHECKING:
    from ilab_gitops.manifests.workloads import StepPlan

API_VERSION = "trainer.kubeflow.org/v1alpha1"
#: The replicated job and container Trainer's torch plugin configures (its `node` constant).
NODE = "node"
#: Label Trainer uses to find the trainer's replicated job in a runtime.
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"


def runtime_name(env: Environment) -> str:
    """The ClusterTrainingRuntime the Environment's TrainJobs reference."""
    return env.spec.trainer.runtime


def trainjob(plan: StepPlan, env: Environment, run: str, name: str, meta: K8sObject) -> K8sObject:
    """The TrainJob running `plan` on `plan.nnodes` nodes; `name` is also its params ConfigMap."""
    res = pods.resources(plan.resources, plan.gpus, env.spec.gpu.resourceName)
    main = pods.container(NODE, plan.image, plan.module, plan.env, res)
    # The pod builder gives the volumes and mounts (params, /tmp, workspace, /dev/shm) and
    # scheduling every step pod gets; the security it sets lives in the runtime instead.
    # One override covers every node, so with progress access every node holds the token.
    pod = pods.pod_spec(
        env,
        name,
        run,
        main,
        restart_policy="Never",
        shm=True,
        extra_volumes=plan.extra_volumes,
        access=plan.access,
    )
    node = pod["containers"][0]
    override: K8sObject = {
        "targetJobs": [{"name": NODE}],
        "containers": [{"name": NODE, "volumeMounts": node["volumeMounts"]}],
        "volumes": pod["volumes"],
    }
    if "serviceAccountName" in pod:
        override["serviceAccountName"] = pod["serviceAccountName"]
    if "nodeSelector" in pod:
        override["nodeSelector"] = pod["nodeSelector"]
    if "tolerations" in pod:
        override["tolerations"] = pod["tolerations"]
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": meta,
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": runtime_name(env),
            },
            # Onto the JobSet and Jobs Trainer derives (pods take the runtime's labels).
            "labels": pods.labels(run, plan.step_id),
            "trainer": {
                "image": main["image"],
                "command": main["command"],
                "args": main["args"],
                "env": node["env"],
                "numNodes": plan.nnodes,
                "numProcPerNode": plan.nproc_per_node,
                "resourcesPerNode": res,
            },
            "podSpecOverrides": [override],
        },
    }


def cluster_training_runtime(env: Environment) -> K8sObject:
    """The ClusterTrainingRuntime a platform owner applies once for `env`: Trainer's torch
    runtime with one `node` replicated job whose pods meet the restricted Pod Security
    Standard and carry the Environment's pod identity, labels and annotations."""
    pod_meta = pods.template_meta(env, "runtime", "train")
    pod_labels = {
        k: v
        for k, v in pod_meta["labels"].items()
        if k not in (pods.LABEL_RUN, pods.LABEL_STEP, "app.kubernetes.io/instance")
    }
    template_meta: K8sObject = {"labels": pod_labels}
    if "annotations" in pod_meta:
        template_meta["annotations"] = pod_meta["annotations"]
    main = pods.container(NODE, env.spec.images.train, "train", [], {})
    del main["resources"], main["volumeMounts"]
    pod: K8sObject = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            **env.spec.podSecurity.security_context(),
        },
        "containers": [main],
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterTrainingRuntime",
        "metadata": {
            "name": runtime_name(env),
            "labels": {
                "trainer.kubeflow.org/framework": "torch",
                "app.kubernetes.io/part-of": "ilab-gitops",
                "app.kubernetes.io/managed-by": "ilab-gitops",
            },
        },
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": NODE,
                            "replicas": 1,
                            "template": {
                                "metadata": {"labels": {ANCESTOR_LABEL: "trainer"}},
                                "spec": {
                                    # A failed rank fails the Job; the TrainJob reports
                                    # Failed and the pipeline stops, as under PyTorchJob.
                                    "backoffLimit": 0,
                                    "template": {"metadata": template_meta, "spec": pod},
                                },
                            },
                        }
                    ]
                }
            },
        },
    }
