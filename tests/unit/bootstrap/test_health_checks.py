"""The Argo CD Lua health checks and the Flux CEL expressions, run against status fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from ilab_gitops.engines.bootstrap import (
    HEALTH_CHECK_KEYS,
    HEALTH_CHECKS,
    argocd_bootstrap,
    health_lua,
)
from ilab_gitops.manifests.flux import PYTORCHJOB_HEALTH, TRAINJOB_HEALTH
from tests.unit.bootstrap.health import (
    FIXTURES,
    argocd_builtin_job_health,
    argocd_job_fixtures,
    argocd_lua_health,
    flux_cel_health,
    load_object,
)

#: Lua verdict -> the Flux verdicts that mean the same for the pipeline. Progressing and
#: Suspended hold the next step; for Flux that is InProgress, or Unknown (an evaluation
#: error, which kstatus reports and Flux keeps waiting on).
AGREES = {
    "Healthy": {"Current"},
    "Degraded": {"Failed"},
    "Progressing": {"InProgress", "Unknown"},
    "Suspended": {"InProgress", "Unknown"},
}

#: fixture -> (Argo CD Lua verdict, Flux CEL verdict)
PYTORCHJOB_EXPECTED = {
    "created": ("Progressing", "InProgress"),
    "running": ("Progressing", "InProgress"),
    "restarting": ("Progressing", "InProgress"),
    "suspended": ("Suspended", "InProgress"),
    "resumed": ("Progressing", "InProgress"),
    "succeeded": ("Healthy", "Current"),
    "failed": ("Degraded", "Failed"),
    # cel-go fails on `status.conditions` when there is no status at all: Unknown, waiting.
    "no-status": ("Progressing", "Unknown"),
}
TRAINJOB_EXPECTED = {
    "no-status": ("Progressing", "Unknown"),
    "suspended": ("Suspended", "InProgress"),
    "running": ("Progressing", "InProgress"),
    "complete": ("Healthy", "Current"),
    "failed": ("Degraded", "Failed"),
}
#: Argo CD's own Job fixtures (tests/data/upstream/README.md): the built-in's verdicts.
ARGOCD_JOB_EXPECTED = {
    "job-running": "Progressing",
    "job-failed": "Degraded",
    "job-succeeded": "Healthy",
    "job-suspended": "Suspended",
}
#: Our Job fixtures: (override verdict, built-in verdict). The built-in counts any
#: Suspended condition as complete, so every resumed Job is "Healthy" to it.
JOB_EXPECTED = {
    "kueue-suspended": ("Suspended", "Suspended"),
    "kueue-resumed": ("Progressing", "Healthy"),
    "success-criteria-met": ("Progressing", "Healthy"),
    "failure-target": ("Degraded", "Healthy"),
    "resumed-complete": ("Healthy", "Healthy"),
    "resumed-failed": ("Degraded", "Degraded"),
}


def _fixture(kind: str, name: str) -> dict[str, Any]:
    return load_object(FIXTURES / kind / f"{name}.yaml")


def test_fixture_folders_hold_exactly_the_expected_fixtures() -> None:
    for kind, expected in (
        ("pytorchjob", PYTORCHJOB_EXPECTED),
        ("trainjob", TRAINJOB_EXPECTED),
        ("job", JOB_EXPECTED),
    ):
        found = {path.stem for path in (FIXTURES / kind).glob("*.yaml")}
        assert found == set(expected), kind
    found = {path.stem for path in argocd_job_fixtures().glob("*.yaml")}
    assert found == set(ARGOCD_JOB_EXPECTED)


# --------------------------------------------------------------------------- PyTorchJob


@pytest.mark.parametrize("name", sorted(PYTORCHJOB_EXPECTED))
def test_pytorchjob_lua(name: str) -> None:
    status, message = argocd_lua_health(health_lua("pytorchjob"), _fixture("pytorchjob", name))
    assert status == PYTORCHJOB_EXPECTED[name][0]
    assert message


def test_pytorchjob_lua_messages() -> None:
    script = health_lua("pytorchjob")
    _, restarting = argocd_lua_health(script, _fixture("pytorchjob", "restarting"))
    assert restarting.startswith("Restarting: ")
    assert "1 Worker replica(s) failed" in restarting
    _, failed = argocd_lua_health(script, _fixture("pytorchjob", "failed"))
    assert "has failed because 1 Master replica(s) failed" in failed
    _, none = argocd_lua_health(script, _fixture("pytorchjob", "no-status"))
    assert "training operator" in none


@pytest.mark.parametrize("name", sorted(PYTORCHJOB_EXPECTED))
def test_pytorchjob_cel(name: str) -> None:
    assert (
        flux_cel_health(PYTORCHJOB_HEALTH, _fixture("pytorchjob", name))
        == (PYTORCHJOB_EXPECTED[name][1])
    )


@pytest.mark.parametrize("name", sorted(PYTORCHJOB_EXPECTED))
def test_pytorchjob_lua_and_cel_agree(name: str) -> None:
    obj = _fixture("pytorchjob", name)
    lua_status, _ = argocd_lua_health(health_lua("pytorchjob"), obj)
    assert flux_cel_health(PYTORCHJOB_HEALTH, obj) in AGREES[lua_status]


def test_failed_wins_over_succeeded_in_both_engines() -> None:
    """Not seen in practice; both engines must still pick the same verdict."""
    obj = _fixture("pytorchjob", "succeeded")
    obj["status"]["conditions"].append(
        {"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "message": "x"}
    )
    assert argocd_lua_health(health_lua("pytorchjob"), obj)[0] == "Degraded"
    assert flux_cel_health(PYTORCHJOB_HEALTH, obj) == "Failed"


@pytest.mark.parametrize(
    ("conditions", "lua", "cel"),
    [
        ([], "Progressing", "InProgress"),
        ([{"type": "Succeeded", "status": "False"}], "Progressing", "InProgress"),
        ([{"type": "Failed", "status": "False"}], "Progressing", "InProgress"),
        ([{"type": "Suspended", "status": "False"}], "Progressing", "InProgress"),
        ([{"type": "Succeeded", "status": "Unknown"}], "Progressing", "InProgress"),
    ],
)
def test_pytorchjob_conditions_that_are_not_true_do_not_count(
    conditions: list[dict[str, str]], lua: str, cel: str
) -> None:
    obj = _fixture("pytorchjob", "no-status")
    obj["status"] = {"conditions": conditions}
    assert argocd_lua_health(health_lua("pytorchjob"), obj)[0] == lua
    assert flux_cel_health(PYTORCHJOB_HEALTH, obj) == cel


def test_pytorchjob_status_without_conditions() -> None:
    obj = _fixture("pytorchjob", "no-status")
    obj["status"] = {"replicaStatuses": {}}
    assert argocd_lua_health(health_lua("pytorchjob"), obj)[0] == "Progressing"
    assert flux_cel_health(PYTORCHJOB_HEALTH, obj) == "InProgress"


# --------------------------------------------------------------------------- TrainJob


@pytest.mark.parametrize("name", sorted(TRAINJOB_EXPECTED))
def test_trainjob_lua_and_cel(name: str) -> None:
    obj = _fixture("trainjob", name)
    lua_status, message = argocd_lua_health(health_lua("trainjob"), obj)
    cel_status = flux_cel_health(TRAINJOB_HEALTH, obj)
    assert (lua_status, cel_status) == TRAINJOB_EXPECTED[name]
    assert cel_status in AGREES[lua_status]
    assert message


# --------------------------------------------------------------------------- batch/v1 Job


@pytest.mark.parametrize("name", sorted(ARGOCD_JOB_EXPECTED))
def test_job_override_matches_argocd_on_its_own_fixtures(name: str) -> None:
    obj = load_object(argocd_job_fixtures() / f"{name}.yaml")
    assert argocd_builtin_job_health(obj) == ARGOCD_JOB_EXPECTED[name], "port of the built-in"
    status, message = argocd_lua_health(health_lua("batch_job"), obj)
    assert status == ARGOCD_JOB_EXPECTED[name]
    assert message


@pytest.mark.parametrize("name", sorted(JOB_EXPECTED))
def test_job_override_on_kueue_and_new_conditions(name: str) -> None:
    obj = _fixture("job", name)
    override, builtin = JOB_EXPECTED[name]
    assert argocd_builtin_job_health(obj) == builtin
    status, message = argocd_lua_health(health_lua("batch_job"), obj)
    assert status == override
    assert message


def test_job_override_messages() -> None:
    script = health_lua("batch_job")
    assert argocd_lua_health(script, _fixture("job", "kueue-resumed"))[1] == (
        "Job is running (1 active pods)"
    )
    assert "backoff limit" in argocd_lua_health(script, _fixture("job", "failure-target"))[1]
    queued = _fixture("job", "kueue-suspended")
    del queued["status"]  # created, the Job controller has not written Suspended yet
    assert argocd_lua_health(script, queued) == (
        "Progressing",
        "Job is suspended, waiting for admission",
    )


# --------------------------------------------------------------------------- packaging


def test_every_health_check_is_installed_in_argocd_cm() -> None:
    cm = argocd_bootstrap("https://github.com/example/runs.git", environment="kind-dev")[0]
    assert cm["metadata"]["name"] == "argocd-cm"
    assert set(cm["data"]) == set(HEALTH_CHECK_KEYS)
    for key, script in HEALTH_CHECK_KEYS.items():
        assert cm["data"][key] == health_lua(script)
        api_version, kind = HEALTH_CHECKS[script]
        group = api_version.rpartition("/")[0]
        assert key == f"resource.customizations.health.{group}_{kind}"


def test_unknown_health_check() -> None:
    with pytest.raises(ValueError, match="unknown health check"):
        health_lua("deployment")
