"""The reusable workflows and the callers `init` writes: parse, structure, least privilege.

Workflow files are read with the project's YAML 1.2 loader, so `on:` stays a string key.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from ilab_gitops import cli
from ilab_gitops.repo.comment import ARTIFACT, MARKER
from ilab_gitops.repo.scaffold import InitOptions, plan
from ilab_gitops.sources import parse_yaml
from tests.conftest import ROOT

REUSABLE = ROOT / ".github" / "workflows"
NAMES = ("ilab-validate.yml", "ilab-pr-comment.yml", "ilab-render.yml")
PINNED = re.compile(
    r"uses: actions/[a-z-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+"
    r"(  # zizmor: ignore\[[a-z-]+\])?$"  # a reviewed exception for the zizmor linter
)


def load(text: str, name: str) -> dict[str, Any]:
    data = parse_yaml(text.encode(), name).data
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def reusable() -> dict[str, dict[str, Any]]:
    names = sorted(p.name for p in REUSABLE.glob("ilab-*.yml"))
    return {n: load((REUSABLE / n).read_text(), n) for n in names}


CALLER_SHA = "0123456789abcdef0123456789abcdef01234567"  # init refuses tags: they can move


@pytest.fixture(scope="module")
def callers() -> dict[str, dict[str, Any]]:
    files = plan(InitOptions(workflows=f"acme/ilab-gitops@{CALLER_SHA}"))
    prefix = ".github/workflows/"
    return {p[len(prefix) :]: load(t, p) for p, t in files.items() if p.startswith(prefix)}


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def scripts(workflow: dict[str, Any]) -> list[str]:
    return [s["run"] for s in steps(workflow) if "run" in s]


def test_reusable_workflows_are_called_only(reusable: dict[str, dict[str, Any]]) -> None:
    for workflow in reusable.values():
        assert list(workflow["on"]) == ["workflow_call"]


def test_least_privilege_everywhere(reusable: dict[str, dict[str, Any]]) -> None:
    top = {name: wf["permissions"] for name, wf in reusable.items()}
    assert top == {
        "ilab-validate.yml": {"contents": "read"},
        "ilab-pr-comment.yml": {},
        "ilab-render.yml": {},
        "ilab-results-sync.yml": {},
    }
    jobs = {
        f"{name}:{job}": spec["permissions"]
        for name, wf in reusable.items()
        for job, spec in wf["jobs"].items()
    }
    assert jobs == {
        "ilab-validate.yml:validate": {"contents": "read"},
        "ilab-pr-comment.yml:comment": {"actions": "read", "pull-requests": "write"},
        "ilab-render.yml:check": {"contents": "read"},
        "ilab-render.yml:commit": {"contents": "write"},
        "ilab-render.yml:unknown-mode": {},
        "ilab-results-sync.yml:sync": {"contents": "write"},
    }


def test_validate_is_safe_for_forks(reusable: dict[str, dict[str, Any]]) -> None:
    text = (REUSABLE / "ilab-validate.yml").read_text()
    assert "secrets." not in text and "pull_request_target" not in text
    [checkout] = [
        s
        for s in steps(reusable["ilab-validate.yml"])
        if "uses" in s and s["uses"].startswith("actions/checkout@")
    ]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    upload = next(
        s
        for s in steps(reusable["ilab-validate.yml"])
        if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload["with"]["name"] == "${{ inputs.artifact-name }}"


def test_pr_comment_runs_no_code_from_the_pr(reusable: dict[str, dict[str, Any]]) -> None:
    workflow = reusable["ilab-pr-comment.yml"]
    job = workflow["jobs"]["comment"]
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in job["steps"])
    script = job["steps"][-1]["with"]["script"]
    assert f"const marker = '{MARKER}';" in script
    assert "pull.head.sha !== process.env.HEAD_SHA" in script  # a forged number is ignored
    inputs = workflow["on"]["workflow_call"]["inputs"]
    validate_inputs = load((REUSABLE / "ilab-validate.yml").read_text(), "v")["on"][
        "workflow_call"
    ]["inputs"]
    assert inputs["artifact-name"]["default"] == validate_inputs["artifact-name"]["default"]
    assert inputs["artifact-name"]["default"] == ARTIFACT


def test_render_mode_selects_the_job(reusable: dict[str, dict[str, Any]]) -> None:
    workflow = reusable["ilab-render.yml"]
    mode = workflow["on"]["workflow_call"]["inputs"]["mode"]
    assert mode["required"] is True
    jobs = workflow["jobs"]
    assert jobs["check"]["if"] == "inputs.mode == 'check'"
    assert jobs["commit"]["if"].startswith("inputs.mode == 'commit'")
    assert "render --check --prune" in " ".join(scripts({"jobs": {"c": jobs["check"]}}))
    assert "git push origin" in scripts({"jobs": {"c": jobs["commit"]}})[-1]


def test_no_expression_is_expanded_inside_a_script(reusable: dict[str, dict[str, Any]]) -> None:
    """Values reach shell scripts through env: only (no script injection)."""
    for name, workflow in reusable.items():
        for script in scripts(workflow):
            assert "${{" not in script, name


def test_actions_are_pinned_to_a_commit() -> None:
    """A tag can be moved by whoever controls the action; a commit sha cannot."""
    for name in sorted(p.name for p in REUSABLE.glob("ilab-*.yml")):
        lines = [line for line in (REUSABLE / name).read_text().splitlines() if "uses:" in line]
        assert lines, name
        for line in lines:
            assert PINNED.search(line), line


def test_inputs_used_are_declared(reusable: dict[str, dict[str, Any]]) -> None:
    for name in NAMES:
        declared = set(reusable[name]["on"]["workflow_call"]["inputs"])
        used = set(re.findall(r"inputs\.([a-z-]+)", (REUSABLE / name).read_text()))
        assert used <= declared, name


def _cli_commands() -> dict[str, Any]:
    """Command name -> command object of the real CLI (typer builds them with its click)."""
    group: Any = typer.main.get_command(cli.app)  # a group; typer's click is not typed as one
    return dict(group.commands)


def test_scripts_use_real_commands_and_flags(reusable: dict[str, dict[str, Any]]) -> None:
    commands = _cli_commands()
    seen = set()
    for workflow in reusable.values():
        for script in scripts(workflow):
            for line in script.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if "ilab-gitops" not in words:
                    continue
                name = words[words.index("ilab-gitops") + 1]
                options = {o for p in commands[name].params for o in getattr(p, "opts", [])}
                flags = {w for w in words if w.startswith("--")}
                assert flags <= options, (name, flags - options)
                seen.add(name)
    assert seen == {"validate", "render", "diff", "pr-comment", "results"}


def test_callers_use_the_reusable_workflows(
    callers: dict[str, dict[str, Any]], reusable: dict[str, dict[str, Any]]
) -> None:
    assert sorted(callers) == ["pr-comment.yml", "render.yml", "results-sync.yml", "validate.yml"]
    for workflow in callers.values():
        [job] = workflow["jobs"].values()
        repo, _, ref = job["uses"].partition("/.github/workflows/")
        target, _, version = ref.partition("@")
        assert (repo, version) == ("acme/ilab-gitops", CALLER_SHA)
        called = reusable[target]
        assert set(job.get("with", {})) <= set(called["on"]["workflow_call"]["inputs"])
        granted = workflow["permissions"]
        for spec in called["jobs"].values():
            for scope, level in spec["permissions"].items():
                assert granted.get(scope) in ({level} | ({"write"} if level == "read" else set()))


def test_caller_triggers(callers: dict[str, dict[str, Any]]) -> None:
    validate, comment, render = (
        callers["validate.yml"],
        callers["pr-comment.yml"],
        callers["render.yml"],
    )
    assert validate["on"]["pull_request"]["types"] == [
        "opened",
        "synchronize",
        "reopened",
        "labeled",
        "unlabeled",
    ]
    assert comment["on"]["workflow_run"] == {
        "workflows": [validate["name"]],
        "types": ["completed"],
    }
    assert render["on"]["push"]["branches"] == ["main"]
    assert render["jobs"]["render"]["with"]["mode"] == "commit"
    assert validate["permissions"] == {"contents": "read"}
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert render["permissions"] == {"contents": "write"}


def test_workflow_files_end_with_a_newline() -> None:
    for path in [*(REUSABLE / n for n in NAMES)]:
        assert Path(path).read_text().endswith("\n")
