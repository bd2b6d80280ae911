"""Text and JSON renderings of a diff report."""

from __future__ import annotations

import json
from pathlib import Path

from ilab_gitops.runsrepo.classify import DiffReport, Reason, RunDiff
from ilab_gitops.runsrepo.fielddiff import MISSING
from ilab_gitops.runsrepo.report import as_json, as_text, describe
from ilab_gitops.runsrepo.scaffold import reference_environments
from tests.unit.repo.specs import LR, diff, example_run, only


def test_text_lists_each_run_then_the_summary(tmp_path: Path) -> None:
    base = {"runs/a.yaml": example_run(), "runs/b.yaml": example_run("granite-b")}
    head = {"runs/b.yaml": example_run("granite-b"), "runs/c.yaml": example_run("granite-c")}
    text = as_text(diff(tmp_path, base, head, allow_removals=True))
    assert text.splitlines() == [
        "granite-a  removed    runs/a.yaml: all 7 step(s) leave git: prepare, train-phase-1, "
        "train-phase-2, eval-mt-bench, eval-final, upload, publish",
        "    removal allowed by --allow-removals",
        "granite-b  unchanged  runs/b.yaml: no step re-runs",
        "granite-c  new        runs/c.yaml: 7 step(s) will run: prepare, train-phase-1, "
        "train-phase-2, eval-mt-bench, eval-final, upload, publish",
        "1 new, 0 rerun, 1 unchanged, 1 removed, 0 forbidden (working tree against origin/main)",
    ]


def test_in_place_changes_are_described(tmp_path: Path) -> None:
    envs = {f"environments/{k}": v for k, v in reference_environments().items()}
    envs["environments/kind-dev.yaml"] = envs["environments/kind-dev.yaml"].replace(
        "engines: [argocd, flux]", "engines: [argocd, flux]\n  flux:\n    timeout: 7m"
    )
    run = only(
        diff(
            tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run()}, head_envs=envs
        )
    )
    assert describe(run) == "no step re-runs; 7 object(s) change in place"
    assert run.steps[0].objects.changed == ("Kustomization/granite-a-prepare",)


def test_json_describes_the_run(tmp_path: Path) -> None:
    added = {"  output:\n": "  output:\n    prefix: elsewhere\n"}
    report = diff(
        tmp_path,
        {"runs/a.yaml": example_run()},
        {"runs/a.yaml": example_run(replacements={**LR, **added})},
    )
    data = json.loads(as_json(report))
    [run] = data["runs"]
    assert (run["status"], run["firstRerunStep"]) == ("rerun", "train-phase-2")
    assert [r["field"] for r in run["reasons"]] == [
        "spec.output.prefix",
        "spec.training.skills.learningRate",
    ]
    assert run["reasons"][0]["old"] == "ilab-runs" and run["reasons"][0]["new"] == "elsewhere"
    assert [s["action"] for s in run["steps"]] == ["untouched"] * 2 + ["rerun"] * 5
    assert run["steps"][2]["objects"]["added"][0].startswith("ConfigMap/granite-a-train-phase-2-")
    assert (data["forbidden"], data["ok"], data["base"]) == ([], True, "origin/main")


def test_json_keeps_absent_values_apart_from_null() -> None:
    reasons = (
        Reason("environment kind-dev", "spec.nodeSelector.zone", MISSING, "a"),
        Reason("spec", "spec.publish.huggingFace", None, {"repo": "o/r"}),
    )
    report = DiffReport("main", (RunDiff("granite-a", "runs/a.yaml", "rerun", reasons=reasons),))
    first, second = json.loads(as_json(report))["runs"][0]["reasons"]
    assert (first["old"], first["oldPresent"], first["newPresent"]) == (None, False, True)
    assert (second["old"], second["oldPresent"]) == (None, True)
