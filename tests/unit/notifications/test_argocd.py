"""Argo CD Notifications: the argocd-notifications-cm fragment validates, and its trigger
conditions and templates, run by the real Go engines, give each step's commit status for
Application fixtures in every state (tests/fixtures/status/objects/application-*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.engines.notifications import argocd
from ilab_gitops.manifests.model import ALL_STEP_IDS
from tests.support.k8s_schemas import builtin_errors, crd_errors
from tests.unit.notifications import gotemplate

OBJECTS = Path(__file__).resolve().parents[2] / "fixtures" / "status" / "objects"
REV = "4c1e9a7b2d3f5e6a7b8c9d0e1f2a3b4c5d6e7f80"
URL = "https://argocd.example.com"


def app(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OBJECTS / f"application-{name}.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gotemplate.build(tmp_path_factory.mktemp("go"))


def _config(argocd_url: str | None = URL) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Templates and trigger conditions as notifications-engine reads them from the
    ConfigMap (each key's YAML string)."""
    data = argocd.argocd_notifications_cm(argocd_url=argocd_url)["data"]
    templates = {
        key.removeprefix("template."): yaml.safe_load(text)
        for key, text in data.items()
        if key.startswith("template.")
    }
    return templates, yaml.safe_load(data[f"trigger.{argocd.TRIGGER}"])


def notify(
    binary: Path,
    application: dict[str, Any],
    step: str,
    *,
    argocd_url: str | None = URL,
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What Argo CD would decide and post for `step`: trigger result, oncePer, status."""
    templates, trigger = _config(argocd_url)
    (condition,) = [c for c in trigger if c["send"] == [argocd.template_name(step)]]
    template = templates[argocd.template_name(step)]
    status = template["github"]["status"]
    case = {
        "vars": {"app": application, "context": context or {}, "notificationType": "github"},
        "templates": {
            "state": status["state"],
            "label": status["label"],
            "targetURL": status["targetURL"],
            "message": template["message"],
        },
        "exprs": {"when": condition["when"], "oncePer": condition["oncePer"]},
    }
    (result,) = gotemplate.evaluate(binary, [case])
    out = {k: v.get("out", "") for k, v in result["templates"].items()}
    for key, value in result["templates"].items():
        assert "error" not in value, (key, value)
    when = result["exprs"]["when"]
    out["when"] = when.get("value", False) if "error" not in when else f"error: {when['error']}"
    if out["when"] is True:
        assert "error" not in result["exprs"]["oncePer"], result["exprs"]["oncePer"]
        out["oncePer"] = result["exprs"]["oncePer"]["value"]
    return out


# ------------------------------------------------------------------------ the ConfigMap


def test_configmap_is_a_valid_configmap() -> None:
    assert builtin_errors(argocd.argocd_notifications_cm(), "1.33") == []
    assert builtin_errors(argocd.argocd_cmd_params_cm(), "1.33") == []


def test_one_condition_and_one_template_per_step() -> None:
    templates, trigger = _config()
    assert [c["send"] for c in trigger] == [[argocd.template_name(s)] for s in ALL_STEP_IDS]
    assert sorted(templates) == sorted(argocd.template_name(s) for s in ALL_STEP_IDS)


def test_github_service_reads_the_app_credentials_from_the_secret() -> None:
    data = argocd.argocd_notifications_cm()["data"]
    service = yaml.safe_load(data["service.github.ilab-github"])
    assert service == {
        "appID": "$github-appID",
        "installationID": "$github-installationID",
        "privateKey": "$github-privateKey",
    }


def test_subscription_annotation_names_the_trigger_and_the_service() -> None:
    assert argocd.SUBSCRIBE_ANNOTATIONS == {
        "notifications.argoproj.io/subscribe.ilab-step-status.ilab-github": ""
    }
    # The Application fixtures carry it, and validate against the upstream CRD.
    for path in sorted(OBJECTS.glob("application-*.yaml")):
        obj = yaml.safe_load(path.read_text())
        assert crd_errors(obj) == [], path.name
        assert argocd.SUBSCRIBE_ANNOTATIONS.items() <= obj["metadata"]["annotations"].items()


# -------------------------------------------------------- rendered by the real Go engines

EXPECTED = [
    # application fixture, step, state, description
    ("queued", "prepare", "success", "succeeded: Job completed"),
    (
        "queued",
        "train-phase-1",
        "pending",
        "queued: PyTorchJob granite-demo-train-phase-1-3f9c2a1b is suspended.",
    ),
    ("queued", "train-phase-2", "pending", "waiting"),
    (
        "training",
        "train-phase-1",
        "pending",
        "running: PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is running.",
    ),
    (
        "restarting",
        "train-phase-1",
        "pending",
        "restarting: PyTorchJob ilab/granite-demo-train-phase-1-3f9c2a1b is restarting because 1 "
        "Worker replica(s) failed.",
    ),
    ("job-queued", "eval-mt-bench", "pending", "queued: Job suspended"),
    ("image-pull", "eval-mt-bench", "pending", "running: Job is running (1 active pods)"),
    ("failed", "eval-final", "failure", "failed: Job has reached the specified backoff limit"),
    ("failed", "upload", "pending", "waiting"),
    ("succeeded", "publish", "success", "succeeded: Job completed"),
    (
        "succeeded",
        "train-phase-2",
        "success",
        "succeeded: PyTorchJob ilab/granite-demo-train-phase-2-8a7b6c5d successfully completed.",
    ),
    # A retry renamed the step: the failed attempt awaiting pruning is not the step any more.
    ("retry", "train-phase-1", "pending", "waiting"),
]


@pytest.mark.parametrize(
    ("fixture", "step", "state", "description"), EXPECTED, ids=[f"{f}-{s}" for f, s, *_ in EXPECTED]
)
def test_commit_status_per_step(
    binary: Path, fixture: str, step: str, state: str, description: str
) -> None:
    out = notify(binary, app(fixture), step)
    assert out["when"] is True
    assert (out["state"], out["message"]) == (state, description)
    assert out["label"] == f"ilab/granite-demo/{step}"
    assert out["targetURL"] == f"{URL}/applications/argocd/granite-demo"
    health = {"success": "Healthy", "failure": "Degraded"}.get(state)
    if health:
        assert out["oncePer"] == f"{REV}/{health}"


def test_oncePer_changes_with_every_health_of_a_step(binary: Path) -> None:
    seen = [
        notify(binary, app(name), "train-phase-1")["oncePer"]
        for name in ("queued", "training", "restarting", "job-queued")
    ]
    assert seen == [
        f"{REV}/Suspended",
        f"{REV}/Progressing",
        f"{REV}/Progressing",
        f"{REV}/Healthy",
    ]


def test_nothing_is_sent_without_per_resource_health(binary: Path) -> None:
    # Argo CD 3's default (resourceHealthSource: appTree): no health in status.resources.
    for step in ALL_STEP_IDS:
        assert notify(binary, app("app-tree"), step)["when"] is False


def test_nothing_is_sent_before_the_first_sync(binary: Path) -> None:
    fresh = app("queued")
    del fresh["status"]
    for step in ("prepare", "publish"):
        assert notify(binary, fresh, step)["when"] is False
    fresh = app("queued")
    del fresh["status"]["operationState"]
    assert notify(binary, fresh, "prepare")["when"] is False


def test_target_url_falls_back_to_argocd_context(binary: Path) -> None:
    out = notify(binary, app("training"), "prepare", argocd_url=None)
    assert out["targetURL"] == ""
    out = notify(
        binary,
        app("training"),
        "prepare",
        argocd_url=None,
        context={"argocdUrl": "https://cd.example.org"},
    )
    assert out["targetURL"] == "https://cd.example.org/applications/argocd/granite-demo"


def test_every_template_field_parses_for_every_step(binary: Path) -> None:
    """Every step's fields evaluate without error against a run that has it and against one
    that lacks it (the fixture has no sdg step: its trigger stays off, its key says so)."""
    templates, trigger = _config()
    application = app("succeeded")
    prefix = application["metadata"]["name"]
    names = [r["name"] for r in application["status"]["resources"]]
    present = [any(n.startswith(f"{prefix}-{s}-") for n in names) for s in ALL_STEP_IDS]
    assert present.count(False) == 1 and not present[ALL_STEP_IDS.index("sdg")]
    cases = [
        {
            "vars": {"app": application, "context": {}},
            "templates": {"message": t["message"], **t["github"]["status"]},
            "exprs": {"when": c["when"], "oncePer": c["oncePer"]},
        }
        for t, c in zip(
            (templates[argocd.template_name(s)] for s in ALL_STEP_IDS), trigger, strict=True
        )
    ]
    results = gotemplate.evaluate(binary, cases)
    for result, has_step in zip(results, present, strict=True):
        assert all("error" not in r for r in result["templates"].values()), result
        assert all("error" not in r for r in result["exprs"].values()), result
        assert result["exprs"]["when"]["value"] is has_step
        assert result["exprs"]["oncePer"]["value"].endswith("/Missing") is not has_step
