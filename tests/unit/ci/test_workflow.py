"""The reusable results-sync workflow: triggers, least privilege, and a script that only
uses options the command really has."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import typer

from ilab_gitops.cli.typer_app import app
from ilab_gitops.load.sources import parse_yaml
from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ilab-results-sync.yml"


def _workflow() -> dict[str, Any]:
    data = parse_yaml(WORKFLOW.read_bytes(), WORKFLOW.name).data
    assert isinstance(data, dict)
    return data


def test_called_only_with_least_privilege() -> None:
    workflow = _workflow()
    assert list(workflow["on"]) == ["workflow_call"]
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    assert job["concurrency"]["cancel-in-progress"] is False


def test_secrets_reach_only_the_sync_step() -> None:
    (job,) = _workflow()["jobs"].values()
    for step in job["steps"]:
        text = str(step)
        if step.get("name") != "Sync results":
            assert "secrets." not in text and "github.token" not in text
    sync = next(s for s in job["steps"] if s.get("name") == "Sync results")
    assert sync["env"]["ILAB_RESULTS_S3_SECRET_KEY"] == "${{ secrets.results-s3-secret-key }}"


def test_script_is_bash_and_uses_real_options() -> None:
    (job,) = _workflow()["jobs"].values()
    script = next(s["run"] for s in job["steps"] if s.get("name") == "Sync results")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    command: Any = typer.main.get_command(app)
    results: Any = command.commands["results"]
    known = {opt for p in results.commands["sync"].params for opt in p.opts}
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", script))
    assert used and used <= known, used - known
