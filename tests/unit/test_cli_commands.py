"""bootstrap, schema and render's tree handling, through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ilab_gitops.cli import app
from tests.support.specs import ROOT

ENVS = ROOT / "environments"
REPO = "https://github.com/example/ilab-runs"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _by_kind(text: str) -> dict[str, dict[str, object]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    return {d["kind"]: d for d in docs if d["kind"] != "ConfigMap"}


def test_bootstrap_argocd_takes_the_namespace_from_the_environment() -> None:
    code, out, _ = _invoke(
        "bootstrap",
        "argocd",
        "--repo-url",
        REPO,
        "-e",
        str(ENVS),
        "--environment",
        "multi-node-gpu",
    )
    assert code == 0
    objects = _by_kind(out)
    project = objects["AppProject"]["spec"]
    assert project["destinations"][0]["namespace"] == "ilab-prod"  # type: ignore[index]
    appset = objects["ApplicationSet"]["spec"]["template"]["spec"]  # type: ignore[index]
    assert appset["destination"]["namespace"] == "ilab-prod"
    assert appset["source"]["repoURL"] == REPO


def test_bootstrap_flux_uses_the_environments_flux_settings() -> None:
    code, out, _ = _invoke(
        "bootstrap", "flux", "--repo-url", REPO, "-e", str(ENVS), "--environment", "kind-dev"
    )
    assert code == 0
    objects = _by_kind(out)
    assert objects["GitRepository"]["metadata"] == {  # the defaults of Environment.spec.flux
        "name": "ilab-runs",
        "namespace": "flux-system",
        "labels": objects["GitRepository"]["metadata"]["labels"],  # type: ignore[index]
    }
    assert objects["Kustomization"]["spec"]["path"] == "./rendered/kind-dev"  # type: ignore[index]
    assert {"Provider", "Alert"} <= set(objects)


def test_bootstrap_needs_a_choice_among_several_environments() -> None:
    code, out, err = _invoke("bootstrap", "flux", "--repo-url", REPO, "-e", str(ENVS))
    assert (code, out) == (2, "")
    assert err == (
        f"ilab-gitops: environment several profiles found in {ENVS.as_posix()}; pass "
        "--environment with one of: kind-dev, multi-node-gpu, single-node-4xh100, "
        "single-node-trainer\n"
    )


def test_schema_prints_the_checked_in_schema() -> None:
    code, out, _ = _invoke("schema", "results")
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "spec/schema/results.schema.json").read_text())


@pytest.fixture
def runs_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "spec" / "examples", tmp_path / "runs")
    shutil.copytree(ENVS, tmp_path / "environments")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_render_check_then_write_then_prune(runs_repo: Path) -> None:
    assert _invoke("render", "runs", "--check")[0] == 1  # nothing rendered yet
    assert _invoke("render", "runs")[0] == 0
    code, _, err = _invoke("render", "runs", "--check")
    assert (code, err) == (0, "rendered: up to date (2 run(s))\n")
    minimal = runs_repo / "rendered/kind-dev/granite-minimal"
    assert (minimal / "01-prepare/manifests.yaml").is_file()
    index = yaml.safe_load((runs_repo / "rendered/kind-dev/kustomization.yaml").read_text())
    assert index["resources"] == ["granite-minimal/flux"]

    (runs_repo / "runs/minimal.yaml").unlink()
    assert _invoke("render", "runs")[0] == 0  # without --prune the old run stays
    assert minimal.is_dir()
    # --check compares the whole tree: a run folder no spec renders is foreign (exit 2)
    code, _, err = _invoke("render", "runs", "--check")
    assert code == 2
    assert "rendered/kind-dev/granite-minimal/01-prepare/manifests.yaml: file not written" in err
    code, _, err = _invoke("render", "runs", "--prune")
    assert code == 0
    assert "removed rendered/kind-dev/granite-minimal/: no spec renders this run folder\n" in err
    assert not minimal.exists()
    index = yaml.safe_load((runs_repo / "rendered/kind-dev/kustomization.yaml").read_text())
    assert index["resources"] == []  # the remaining run's environment has no Flux
    root = yaml.safe_load((runs_repo / "rendered/kustomization.yaml").read_text())
    assert root["resources"] == []
