"""Progress in commit statuses (Environment commitStatusProgress), from the compiled objects
through the ConfigMap Lua health check to the commit status Argo CD Notifications posts,
each stage run by the real engine where we have it (Lua 5.1, Go text/template and expr)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.engines.bootstrap import argocd_bootstrap
from ilab_gitops.engines.bootstrap.argocd import PROGRESS_CHECK_KEY, health_lua
from ilab_gitops.manifests import compile_run
from ilab_gitops.manifests.progress import LABEL_PROGRESS, PROGRESS_STEPS, TOKEN_DIR
from ilab_gitops.spec.environment import Environment
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


@pytest.mark.parametrize("env_name", ["single-node-4xh100", "single-node-trainer", "kind-dev"])
def test_the_run_gets_an_account_that_may_only_patch_its_progress(env_name: str) -> None:
    env = _env(env_name)
    objects = _objects(env)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    run = objects[0]["metadata"]["labels"]["gitops.instructlab.ai/run"]
    names = [f"{run}-{step}-progress" for step in PROGRESS_STEPS]
    (account,) = by_kind["ServiceAccount"]
    (role,) = by_kind["Role"]
    (binding,) = by_kind["RoleBinding"]
    assert account["metadata"]["name"] == f"{run}-progress"
    assert account["automountServiceAccountToken"] is False
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": names,
            "verbs": ["get", "patch"],
        }
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{run}-progress", "namespace": env.spec.namespace}
    ]
    progress = [o for o in by_kind["ConfigMap"] if LABEL_PROGRESS in o["metadata"]["labels"]]
    assert [o["metadata"]["name"] for o in progress] == names
    # No data: what the step writes is not drift, and a sync never takes it back.
    assert all(set(o) == {"apiVersion", "kind", "metadata"} for o in progress)
    for obj in [account, role, binding, *progress]:
        assert builtin_errors(obj, env.spec.kubernetesVersion) == [], obj["kind"]
    for obj in objects:
        if obj["kind"] in ("PyTorchJob", "TrainJob"):
            assert crd_errors(obj) == [], obj["metadata"]["name"]


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
            assert account == f"{run}-progress"
            assert {"ILAB_PROGRESS_CONFIGMAP", "ILAB_PROGRESS_TOKEN_DIR"} <= set(env)
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
    name = train["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert env["ILAB_PROGRESS_CONFIGMAP"] == f"{name}-train-phase-1-progress"


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


# --------------------------------------------------------------------------- Lua


def _progress_configmap(description: Any = None) -> dict[str, Any]:
    (configmap,) = [
        o
        for o in _objects(_env("single-node-4xh100"))
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-train-phase-1-progress")
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


def test_lua_leaves_every_other_configmap_unjudged() -> None:
    foreign: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"description": "hi"},
    }
    assert argocd_lua_health_or_none(SCRIPT, foreign) is None
    labelled = copy.deepcopy(foreign)
    labelled["metadata"]["labels"] = {LABEL_PROGRESS: "false"}
    assert argocd_lua_health_or_none(SCRIPT, labelled) is None
    assert argocd_lua_health_or_none(SCRIPT, {"apiVersion": "v1", "kind": "ConfigMap"}) is None


# --------------------------------------------------------------------------- commit status


def _with_progress(fixture: str, step: str, message: str | None) -> dict[str, Any]:
    """An Application fixture whose resources list the step's progress ConfigMap with the
    health the Lua check gives it."""
    application = app(fixture)
    health: dict[str, Any] = {"status": "Healthy"}
    if message:
        health["message"] = message
    application["status"]["resources"].append(
        {
            "version": "v1",
            "kind": "ConfigMap",
            "namespace": "ilab",
            "name": f"{RUN}-{step}-progress",
            "status": "Synced",
            "health": health,
        }
    )
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


def test_no_progress_yet_keeps_the_workloads_message(binary: Path) -> None:
    out = notify(binary, _with_progress("training", "train-phase-1", None), "train-phase-1")
    assert (
        out["message"] == "running: PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is running."
    )
    assert out["oncePer"] == f"{REV}/Progressing"
