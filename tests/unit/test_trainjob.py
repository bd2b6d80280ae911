"""Kubeflow Trainer v2: trainingKind TrainJob compiles the training phases to TrainJobs that
reference the ClusterTrainingRuntime `bootstrap` prints, valid against the vendored CRDs, with
the pod contract (resources, /dev/shm, volumes, Kueue, restricted security) of a PyTorchJob."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ilab_gitops.cli.typer_app import app
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.manifests import compile_run
from ilab_gitops.manifests.trainjob import cluster_training_runtime
from ilab_gitops.spec.environment import Environment
from tests.security.pss import restricted_violations
from tests.support.k8s_schemas import crd_errors, upstream_schemas
from tests.support.specs import ROOT, load_environment, load_run

ENVS = ROOT / "environments"
TRAINER_ENV = ENVS / "single-node-trainer.yaml"
RUN = ROOT / "spec" / "examples" / "production.yaml"
TRAIN_STEPS = ("train-phase-1", "train-phase-2")


def _env_with(**changes: Any) -> Environment:
    data = yaml.safe_load(TRAINER_ENV.read_text())
    data["spec"].update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data["spec"][key]
    return Environment.model_validate(data)


def _trainjobs(env: Environment) -> dict[str, dict[str, Any]]:
    steps = compile_run(load_run(RUN), env).steps
    return {
        s.step_id: next(o for o in s.objects if o["kind"] == "TrainJob")
        for s in steps
        if s.step_id in TRAIN_STEPS
    }


def test_training_phases_are_trainjobs_valid_against_the_crd() -> None:
    upstream_schemas()
    env = load_environment(TRAINER_ENV)
    manifests = compile_run(load_run(RUN), env)
    kinds = {s.step_id: sorted(o["kind"] for o in s.objects) for s in manifests.steps}
    for step_id in TRAIN_STEPS:
        assert "TrainJob" in kinds[step_id] and "PyTorchJob" not in kinds[step_id]
    for step in manifests.steps:
        for obj in step.objects:
            if obj["kind"] == "TrainJob":
                assert crd_errors(obj) == [], step.step_id


def test_the_validator_rejects_a_broken_trainjob() -> None:
    upstream_schemas()
    job = copy.deepcopy(_trainjobs(load_environment(TRAINER_ENV))["train-phase-1"])
    job["spec"]["trainer"]["numNodes"] = "two"
    del job["spec"]["runtimeRef"]
    assert len(crd_errors(job)) == 2


def test_trainjob_carries_the_run_contract() -> None:
    env = load_environment(TRAINER_ENV)
    run = load_run(RUN)
    steps = {s.step_id: s for s in compile_run(run, env).steps}
    for step_id in TRAIN_STEPS:
        step = steps[step_id]
        job = next(o for o in step.objects if o["kind"] == "TrainJob")
        config = next(
            o
            for o in step.objects
            if o["kind"] == "ConfigMap" and "params.json" in o.get("data", {})
        )
        spec = job["spec"]
        assert job["metadata"]["name"] == step.name == config["metadata"]["name"]
        assert spec["runtimeRef"]["name"] == "ilab-torch-distributed"
        assert spec["runtimeRef"]["kind"] == "ClusterTrainingRuntime"
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ilab-gpu"
        trainer = spec["trainer"]
        assert trainer["image"] == env.spec.images.train
        assert trainer["command"] == ["python", "-m", "ilab_gitops.steps.train"]
        assert trainer["numNodes"] == run.spec.training.nodes(env.spec.gpu.nodes)
        assert trainer["numProcPerNode"] == run.spec.training.nprocPerNode
        gpus = run.spec.training.nprocPerNode
        assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == gpus
        assert trainer["resourcesPerNode"]["requests"]["nvidia.com/gpu"] == gpus
        assert {"name": "ILAB_PARAMS", "value": "/etc/ilab/params.json"} in trainer["env"]
        (override,) = spec["podSpecOverrides"]
        assert override["targetJobs"] == [{"name": "node"}]
        volumes = {v["name"]: v for v in override["volumes"]}
        assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory"}}
        assert volumes["params"]["configMap"]["name"] == step.name
        assert volumes["workspace"]["persistentVolumeClaim"]["claimName"].startswith(
            run.metadata.name
        )
        (container,) = override["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/dev/shm"] == "dshm" and mounts["/workspace"] == "workspace"
        assert override["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]


def test_names_chain_through_the_trainjob() -> None:
    """The runtime a TrainJob references is part of its content: another runtime is another
    training step, and so a new name for it and for every step after it."""
    first = compile_run(load_run(RUN), load_environment(TRAINER_ENV)).steps
    other = compile_run(load_run(RUN), _env_with(trainer={"runtime": "other-rt"})).steps
    names = [(a.step_id, a.name == b.name) for a, b in zip(first, other, strict=True)]
    phase1 = [s.step_id for s in first].index("train-phase-1")
    assert all(same for _, same in names[:phase1])
    assert not any(same for _, same in names[phase1:])


def test_pytorchjob_environment_is_unchanged_by_the_trainer_field_default() -> None:
    env = _env_with(trainingKind="PyTorchJob", trainer=None)
    steps = compile_run(load_run(RUN), env).steps
    kinds = {o["kind"] for s in steps for o in s.objects}
    assert "PyTorchJob" in kinds and "TrainJob" not in kinds


def _merged_pod(runtime: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The pod Trainer builds: the runtime's template, patched by the TrainJob (Trainer 2.0
    appends override volumes, mounts and tolerations and sets the trainer fields)."""
    (rjob,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    pod: dict[str, Any] = copy.deepcopy(rjob["template"]["spec"]["template"]["spec"])
    (override,) = job["spec"]["podSpecOverrides"]
    (node,) = pod["containers"]
    (patch,) = override["containers"]
    assert patch["name"] == node["name"] == "node"
    node["volumeMounts"] = [*node.get("volumeMounts", []), *patch["volumeMounts"]]
    node["image"] = job["spec"]["trainer"]["image"]
    node["resources"] = job["spec"]["trainer"]["resourcesPerNode"]
    pod["volumes"] = [*pod.get("volumes", []), *override["volumes"]]
    pod["tolerations"] = [*pod.get("tolerations", []), *override.get("tolerations", [])]
    return pod


def test_runtime_is_valid_and_its_pods_meet_the_restricted_standard() -> None:
    upstream_schemas()
    env = load_environment(TRAINER_ENV)
    runtime = cluster_training_runtime(env)
    assert crd_errors(runtime) == []
    assert runtime["metadata"]["name"] == env.spec.trainer.runtime
    (rjob,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert rjob["name"] == "node"
    labels = rjob["template"]["metadata"]["labels"]
    assert labels["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"
    for job in _trainjobs(env).values():
        pod = _merged_pod(runtime, job)
        assert restricted_violations(pod) == []
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 1001
        ctx = pod["containers"][0]["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["privileged"] is False


def test_restricted_check_sees_a_runtime_without_security() -> None:
    env = load_environment(TRAINER_ENV)
    runtime = cluster_training_runtime(env)
    rjob = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]
    pod_spec = rjob["template"]["spec"]["template"]["spec"]
    del pod_spec["securityContext"]
    del pod_spec["containers"][0]["securityContext"]
    job = _trainjobs(env)["train-phase-1"]
    assert restricted_violations(_merged_pod(runtime, job)) != []


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_bootstrap_prints_the_runtime_for_a_trainjob_environment(engine: str) -> None:
    repo = "https://github.com/example/ilab-runs"
    code, out, _ = _invoke(
        "bootstrap",
        engine,
        "--repo-url",
        repo,
        "-e",
        str(ENVS),
        "--environment",
        "single-node-trainer",
    )
    assert code == 0
    runtimes = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ClusterTrainingRuntime"]
    assert runtimes == [cluster_training_runtime(load_environment(TRAINER_ENV))]
    code, out, _ = _invoke(
        "bootstrap",
        engine,
        "--repo-url",
        repo,
        "-e",
        str(ENVS),
        "--environment",
        # a PyTorchJob profile served by this engine
        "single-node-4xh100" if engine == "argocd" else "multi-node-gpu",
    )
    assert code == 0
    assert "ClusterTrainingRuntime" not in out


def test_trainer_without_trainjob_is_refused_with_its_location() -> None:
    text = TRAINER_ENV.read_text().replace("trainingKind: TrainJob", "trainingKind: PyTorchJob")
    text = text.replace("runtime: ilab-torch-distributed", "runtime: my-runtime")
    model, diagnostics = check_document(parse_yaml(text.encode(), "env.yaml"))
    assert model is None
    messages = [str(d) for d in diagnostics]
    assert any("trainer is set but trainingKind is PyTorchJob" in m for m in messages), messages


def test_unknown_training_kind_is_refused() -> None:
    text = TRAINER_ENV.read_text().replace("trainingKind: TrainJob", "trainingKind: MPIJob")
    model, diagnostics = check_document(parse_yaml(text.encode(), "env.yaml"))
    assert model is None
    assert any("trainingKind" in str(d) for d in diagnostics)
