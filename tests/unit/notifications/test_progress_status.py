"""Progress in commit statuses (Environment commitStatusProgress), from the compiled objects
through the ConfigMap Lua health check to the commit status Argo CD Notifications posts,
each stage run by the real engine where we have it (Lua 5.1, Go text/template and expr)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.engines.bootstrap import argocd_bootstrap, flux_bootstrap
from ilab_gitops.engines.bootstrap.argocd import PROGRESS_CHECK_KEY, health_lua
from ilab_gitops.manifests import compile_run
from ilab_gitops.manifests.model import CompiledStep
from ilab_gitops.manifests.progress import (
    LABEL_PROGRESS,
    PROGRESS_STEPS,
    TOKEN_DIR,
    configmap_name,
)
from ilab_gitops.spec.environment import Environment
from ilab_gitops.steps import progress_status
from ilab_gitops.steps.progress import Progress
from tests.support.k8s_schemas import builtin_errors, crd_errors
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run
from tests.unit.bootstrap.health import argocd_lua_health_or_none
from tests.unit.notifications import gotemplate
from tests.unit.notifications.test_argocd import REV, app, notify

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = health_lua("progress_configmap")
RUN = "granite-demo"


def _env(name: str, progress: bool = True) -> Environment:
    env = load_environment(ROOT / "environments" / f"{name}.yaml")
    return env.model_copy(
        update={"spec": env.spec.model_copy(update={"commitStatusProgress": progress})}
    )


def _objects(env: Environment) -> list[dict[str, Any]]:
    run = load_run(next(p for p in EXAMPLES if p.stem == "minimal"))
    return list(compile_run(run, env).objects())


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gotemplate.build(tmp_path_factory.mktemp("go"))


# --------------------------------------------------------------------------- compiled


def _steps(env: Environment) -> list[CompiledStep]:
    run = load_run(next(p for p in EXAMPLES if p.stem == "minimal"))
    return list(compile_run(run, env).steps)


@pytest.mark.parametrize("env_name", ["single-node-4xh100", "single-node-trainer", "kind-dev"])
def test_each_reporting_step_may_only_patch_its_own_progress(env_name: str) -> None:
    env = _env(env_name)
    steps = _steps(env)
    run = steps[0].objects[0]["metadata"]["labels"]["gitops.instructlab.ai/run"]
    reporting = [s for s in steps if s.step_id in PROGRESS_STEPS]
    assert [s.step_id for s in reporting] == list(PROGRESS_STEPS)
    for step in steps:
        kinds = [o["kind"] for o in step.objects]
        if step not in reporting:
            assert not {"ServiceAccount", "Role", "RoleBinding"} & set(kinds), step.step_id
            continue
        # An account of the step's own: its token reaches no other step's ConfigMap.
        account, configmap, role, binding = step.objects[:4]
        assert account["kind"] == "ServiceAccount"
        assert account["metadata"]["name"] == f"{run}-{step.step_id}-progress"
        assert account["automountServiceAccountToken"] is False
        # The rest named after the attempt: a re-run starts from a fresh, empty ConfigMap.
        name = f"{step.name}-progress"
        assert [o["metadata"]["name"] for o in (configmap, role, binding)] == [name] * 3
        assert configmap["metadata"]["labels"][LABEL_PROGRESS] == "true"
        # No data: what the step writes is not drift, and a sync never takes it back.
        assert set(configmap) == {"apiVersion", "kind", "metadata"}
        assert role["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [name],
                "verbs": ["patch"],
            }
        ]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": env.spec.namespace,
            }
        ]
        for obj in (account, configmap, role, binding):
            assert builtin_errors(obj, env.spec.kubernetesVersion) == [], obj["kind"]
            wave = obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            assert wave == str(step.wave)
        (work,) = [o for o in step.objects if o["kind"] in ("Job", "PyTorchJob", "TrainJob")]
        if work["kind"] != "Job":
            assert crd_errors(work) == [], work["metadata"]["name"]


def test_a_rerun_gets_new_progress_objects_and_the_hash_ignores_them() -> None:
    env = _env("single-node-4xh100")
    run = load_run(next(p for p in EXAMPLES if p.stem == "minimal"))
    first = {s.step_id: s for s in compile_run(run, env).steps}
    phase = run.spec.training.knowledge.model_copy(update={"attempt": 1})
    training = run.spec.training.model_copy(update={"knowledge": phase})
    again = run.model_copy(update={"spec": run.spec.model_copy(update={"training": training})})
    second = {s.step_id: s for s in compile_run(again, env).steps}
    assert first["prepare"].name == second["prepare"].name
    assert first["train-phase-1"].name != second["train-phase-1"].name
    assert second["train-phase-1"].objects[1]["metadata"]["name"] == (
        f"{second['train-phase-1'].name}-progress"
    )
    # Without the option the same steps have the same names: the progress objects are
    # outside the hash, only the pods' access is in it.
    plain = {s.step_id: s.name for s in compile_run(run, _env("single-node-4xh100", False)).steps}
    assert plain["prepare"] == first["prepare"].name
    assert plain["train-phase-1"] != first["train-phase-1"].name


def _pod_settings(workload: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """(service account, env var names, volume names) of a workload's pods."""
    spec = workload["spec"]
    if workload["kind"] == "TrainJob":
        (override,) = spec["podSpecOverrides"]
        env = [v["name"] for v in spec["trainer"]["env"]]
        return override.get("serviceAccountName"), env, [v["name"] for v in override["volumes"]]
    if workload["kind"] == "Job":
        pod = spec["template"]["spec"]
    else:
        pod = spec["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    env = [v["name"] for v in pod["containers"][0]["env"]]
    assert pod["automountServiceAccountToken"] is False
    return pod.get("serviceAccountName"), env, [v["name"] for v in pod["volumes"]]


@pytest.mark.parametrize("env_name", ["single-node-4xh100", "single-node-trainer"])
def test_only_the_reporting_steps_get_the_token(env_name: str) -> None:
    workloads = [
        o for o in _objects(_env(env_name)) if o["kind"] in ("Job", "PyTorchJob", "TrainJob")
    ]
    reporting = 0
    for workload in workloads:
        step = workload["metadata"]["labels"]["gitops.instructlab.ai/step"]
        account, env, volumes = _pod_settings(workload)
        if step in PROGRESS_STEPS:
            reporting += 1
            run = workload["metadata"]["labels"]["gitops.instructlab.ai/run"]
            assert account == f"{run}-{step}-progress"
            assert [n for n in env if n.startswith("ILAB_PROGRESS")] == ["ILAB_PROGRESS_TOKEN_DIR"]
            assert "progress-token" in volumes
        else:
            assert account is None and "progress-token" not in volumes
            assert not any(name.startswith("ILAB_PROGRESS") for name in env)
    assert reporting == len(PROGRESS_STEPS)


def test_the_token_volume_is_projected_short_lived_and_read_only() -> None:
    (train,) = [
        o
        for o in _objects(_env("single-node-4xh100"))
        if o["kind"] == "PyTorchJob"
        and o["metadata"]["labels"]["gitops.instructlab.ai/step"] == "train-phase-1"
    ]
    pod = train["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "progress-token"]
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"] == {"fieldPath": "metadata.namespace"}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "progress-token"]
    assert mount == {"name": "progress-token", "mountPath": TOKEN_DIR, "readOnly": True}
    env = {v["name"]: v.get("value") for v in pod["containers"][0]["env"]}
    assert env["ILAB_PROGRESS_TOKEN_DIR"] == TOKEN_DIR
    # The pod finds its ConfigMap from its step name, as the compiler names it.
    params = next(
        json.loads(o["data"]["params.json"])
        for o in _objects(_env("single-node-4xh100"))
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == train["metadata"]["name"]
    )
    assert progress_status.configmap_name(params["stepName"]) == configmap_name(
        train["metadata"]["name"]
    )


def test_only_the_master_of_a_multi_node_training_gets_the_token() -> None:
    """Rank 0 (the Master) reports progress; Workers run without the account or token."""
    env = load_environment(ROOT / "environments" / "multi-node-gpu.yaml")
    env = env.model_copy(
        update={
            "spec": env.spec.model_copy(
                update={"engines": ["argocd"], "commitStatusProgress": True}
            )
        }
    )
    run = load_run(next(p for p in EXAMPLES if p.stem == "minimal"))
    training = run.spec.training.model_copy(update={"nnodes": 3})
    run = run.model_copy(update={"spec": run.spec.model_copy(update={"training": training})})
    trains = [
        o
        for o in compile_run(run, env).objects()
        if o["kind"] == "PyTorchJob"
        and o["metadata"]["labels"]["gitops.instructlab.ai/step"].startswith("train-")
    ]
    assert len(trains) == 2
    for job in trains:
        assert crd_errors(job) == []
        replicas = job["spec"]["pytorchReplicaSpecs"]
        assert replicas["Worker"]["replicas"] == 2
        master, worker = (
            replicas["Master"]["template"]["spec"],
            replicas["Worker"]["template"]["spec"],
        )
        assert master["serviceAccountName"].endswith("-progress")
        assert "progress-token" in [v["name"] for v in master["volumes"]]
        assert "serviceAccountName" not in worker
        assert "progress-token" not in [v["name"] for v in worker["volumes"]]
        assert [
            m for m in worker["containers"][0]["volumeMounts"] if m["name"] == "progress-token"
        ] == []
        assert not [
            v for v in worker["containers"][0]["env"] if v["name"].startswith("ILAB_PROGRESS")
        ]
        # Apart from the token, Master and Worker run the same pod.
        master_rest = json.loads(json.dumps(master))
        master_rest.pop("serviceAccountName")
        master_rest["volumes"] = [
            v for v in master_rest["volumes"] if v["name"] != "progress-token"
        ]
        container = master_rest["containers"][0]
        container["volumeMounts"] = [
            m for m in container["volumeMounts"] if m["name"] != "progress-token"
        ]
        container["env"] = [
            v for v in container["env"] if not v["name"].startswith("ILAB_PROGRESS")
        ]
        assert master_rest == worker


def test_without_the_option_nothing_changes() -> None:
    for env_path in ENVIRONMENTS:
        env = load_environment(env_path)
        if env.spec.commitStatusProgress:
            continue
        kinds = {o["kind"] for o in _objects(env)}
        assert not kinds & {"ServiceAccount", "Role", "RoleBinding"}, env_path.name
        assert "serviceAccountName" not in str(_objects(env))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_installs_the_check_and_allows_the_kinds_only_when_asked() -> None:
    plain = argocd_bootstrap("https://github.com/example/runs.git", environment="e")
    asked = argocd_bootstrap("https://github.com/example/runs.git", environment="e", progress=True)
    assert PROGRESS_CHECK_KEY not in plain[0]["data"]
    assert asked[0]["data"][PROGRESS_CHECK_KEY] == SCRIPT
    assert PROGRESS_CHECK_KEY == "resource.customizations.health.ConfigMap"
    extra = {(e["group"], e["kind"]) for e in asked[3]["spec"]["namespaceResourceWhitelist"]} - {
        (e["group"], e["kind"]) for e in plain[3]["spec"]["namespaceResourceWhitelist"]
    }
    assert extra == {
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    }
    assert builtin_errors(asked[0], "1.33") == []
    # ... and the admission policy on the runs' RBAC, for Argo CD's controller.
    policy, binding = asked[5:]
    assert (policy["kind"], binding["kind"]) == (
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )
    assert "system:serviceaccount:argocd:" in str(policy)
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ilab"}
    }
    assert builtin_errors(policy, "1.30") == [] and builtin_errors(binding, "1.30") == []
    assert len(plain) == 5
    flux = flux_bootstrap("https://github.com/example/runs.git", environment="e")
    flux_asked = flux_bootstrap(
        "https://github.com/example/runs.git", environment="e", progress_namespace="ilab"
    )
    assert flux_asked[: len(flux)] == flux
    assert "system:serviceaccount:flux-system:" in str(flux_asked[-2])


# --------------------------------------------------------------------------- Lua


def _progress_configmap(description: Any = None) -> dict[str, Any]:
    (configmap,) = [
        o
        for o in _objects(_env("single-node-4xh100"))
        if o["kind"] == "ConfigMap"
        and o["metadata"]["labels"].get(LABEL_PROGRESS) == "true"
        and o["metadata"]["labels"]["gitops.instructlab.ai/step"] == "train-phase-1"
    ]
    live = copy.deepcopy(configmap)
    if description is not None:
        live["data"] = {"description": description}
    return live


def test_lua_gives_the_progress_as_a_healthy_message_using_only_the_base_library() -> None:
    text = Progress(
        step="train-phase-1", kind="training", elapsedSeconds=1, percent=41, epoch=3, epochs=7
    ).describe()
    hide = ("string", "math", "table")
    assert argocd_lua_health_or_none(SCRIPT, _progress_configmap(text), hide=hide) == (
        "Healthy",
        "epoch 3/7, 41 %",
    )
    assert argocd_lua_health_or_none(SCRIPT, _progress_configmap(), hide=hide) == ("Healthy", "")


def test_lua_drops_what_a_step_should_not_have_written() -> None:
    assert argocd_lua_health_or_none(SCRIPT, _progress_configmap("x" * 121)) == ("Healthy", "")
    assert argocd_lua_health_or_none(SCRIPT, _progress_configmap("x" * 120))[1] == "x" * 120  # type: ignore[index]


def test_lua_judges_every_other_configmap_healthy_and_says_nothing() -> None:
    """The key covers every ConfigMap of the Argo CD instance. Returning nil would not mean
    "no health" in Argo CD 3 but an empty status that a sync wave never gets past."""
    foreign: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"description": "hi"},
    }
    assert argocd_lua_health_or_none(SCRIPT, foreign) == ("Healthy", "")
    labelled = copy.deepcopy(foreign)
    labelled["metadata"]["labels"] = {LABEL_PROGRESS: "false"}
    assert argocd_lua_health_or_none(SCRIPT, labelled) == ("Healthy", "")
    bare = {"apiVersion": "v1", "kind": "ConfigMap"}
    assert argocd_lua_health_or_none(SCRIPT, bare, hide=("string", "math", "table")) == (
        "Healthy",
        "",
    )


# --------------------------------------------------------------------------- commit status


def _with_progress(
    fixture: str, step: str, message: str | None, *, attempt: str = "", pruning: bool = False
) -> dict[str, Any]:
    """An Application fixture whose resources list the progress ConfigMap of the step's
    workload (or of an earlier `attempt`, awaiting pruning) with the health the Lua check
    gives it."""
    application = app(fixture)
    resources = application["status"]["resources"]
    workload = attempt or next(
        r["name"]
        for r in resources
        if r["kind"] in ("Job", "PyTorchJob", "TrainJob")
        and r["name"].startswith(f"{RUN}-{step}-")
        and not r.get("requiresPruning")
    )
    health: dict[str, Any] = {"status": "Healthy"}
    if message:
        health["message"] = message
    entry: dict[str, Any] = {
        "version": "v1",
        "kind": "ConfigMap",
        "namespace": "ilab",
        "name": f"{workload}-progress",
        "status": "Synced",
        "health": health,
    }
    if pruning:
        entry["requiresPruning"] = True
    resources.append(entry)
    assert crd_errors(application) == []
    return application


def test_a_running_step_shows_its_progress(binary: Path) -> None:
    lua_message = argocd_lua_health_or_none(SCRIPT, _progress_configmap("epoch 3/7, 41 %"))
    assert lua_message is not None
    out = notify(
        binary, _with_progress("training", "train-phase-1", lua_message[1]), "train-phase-1"
    )
    assert (out["state"], out["message"]) == ("pending", "running: epoch 3/7, 41 %")
    assert out["oncePer"] == f"{REV}/Progressing/epoch 3/7, 41 %"
    later = notify(
        binary, _with_progress("training", "train-phase-1", "epoch 4/7, 55 %"), "train-phase-1"
    )
    assert later["oncePer"] == f"{REV}/Progressing/epoch 4/7, 55 %"  # posted again


def test_progress_is_shown_only_while_the_step_runs(binary: Path) -> None:
    restarting = notify(
        binary, _with_progress("restarting", "train-phase-1", "epoch 3/7, 41 %"), "train-phase-1"
    )
    assert restarting["message"].startswith("restarting: PyTorchJob")
    queued = notify(
        binary, _with_progress("queued", "train-phase-1", "epoch 1/7, 0 %"), "train-phase-1"
    )
    assert queued["message"].startswith("queued: ") and queued["oncePer"] == f"{REV}/Suspended"
    done = notify(
        binary, _with_progress("succeeded", "train-phase-2", "epoch 10/10, 100 %"), "train-phase-2"
    )
    assert done["message"].startswith("succeeded: ") and done["oncePer"] == f"{REV}/Healthy"


def test_a_step_reads_only_its_own_progress(binary: Path) -> None:
    out = notify(
        binary, _with_progress("training", "train-phase-2", "epoch 9/10, 90 %"), "train-phase-1"
    )
    assert (
        out["message"] == "running: PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is running."
    )
    assert out["oncePer"] == f"{REV}/Progressing"


def test_an_earlier_attempts_progress_is_not_the_steps(binary: Path) -> None:
    old = f"{RUN}-train-phase-1-0badcafe"
    stale = _with_progress(
        "training", "train-phase-1", "epoch 7/7, 100 %", attempt=old, pruning=True
    )
    out = notify(binary, stale, "train-phase-1")
    assert (
        out["message"].startswith("running: PyTorchJob") and out["oncePer"] == f"{REV}/Progressing"
    )


def test_no_progress_yet_keeps_the_workloads_message(binary: Path) -> None:
    out = notify(binary, _with_progress("training", "train-phase-1", None), "train-phase-1")
    assert (
        out["message"] == "running: PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is running."
    )
    assert out["oncePer"] == f"{REV}/Progressing"
