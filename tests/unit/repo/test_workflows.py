"""The reusable workflows and the callers `init` writes: parse, structure, least privilege.

Workflow files are read with the project's YAML 1.2 loader, so `on:` stays a string key.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer

from ilab_gitops.cli import typer_app as cli
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.runsrepo.comment import ARTIFACT, MARKER
from ilab_gitops.runsrepo.scaffold import InitOptions, plan
from tests.conftest import ROOT

REUSABLE = ROOT / ".github" / "workflows"
NAMES = ("ilab-validate.yml", "ilab-pr-comment.yml", "ilab-render.yml")
SHA = "0123456789abcdef0123456789abcdef01234567"
LOCK = ROOT / ".github" / "install" / "requirements.txt"
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


@pytest.fixture(scope="module")
def callers() -> dict[str, dict[str, Any]]:
    files = plan(InitOptions(workflows=f"acme/ilab-gitops@{SHA}"))
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
    assert (
        'authed push --quiet origin "HEAD:$GITHUB_REF"'
        in scripts({"jobs": {"c": jobs["commit"]}})[-1]
    )


def test_no_expression_is_expanded_inside_a_script(reusable: dict[str, dict[str, Any]]) -> None:
    """Values reach shell scripts through env: only (no script injection)."""
    for name, workflow in reusable.items():
        for script in scripts(workflow):
            assert "${{" not in script, name


def test_actions_are_pinned_to_a_commit() -> None:
    """A tag can be moved by whoever controls the action; a commit sha cannot."""
    for name in sorted(p.name for p in REUSABLE.glob("ilab-*.yml")):
        text = (REUSABLE / name).read_text()
        lines = [line for line in text.splitlines() if re.match(r"\s*(- )?uses:", line)]
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
        assert (repo, version) == ("acme/ilab-gitops", SHA)
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


# --- a hostile pull request: nothing from its tree runs --------------------------------------


def _is_checkout(step: dict[str, Any]) -> bool:
    return str(step.get("uses", "")).startswith("actions/checkout@")


def _install_step(job: dict[str, Any]) -> dict[str, Any] | None:
    found = [s for s in job.get("steps", []) if "install.sh" in s.get("run", "")]
    assert len(found) <= 1
    return found[0] if found else None


def test_the_tool_is_installed_before_any_checkout_from_runner_temp(
    reusable: dict[str, dict[str, Any]],
) -> None:
    """The install sees no file of the PR; the tool comes from the pinned commit only."""
    installing = []
    for name, workflow in reusable.items():
        for job_name, job in workflow["jobs"].items():
            install = _install_step(job)
            if install is None:
                assert not any("ilab-gitops" in s.get("run", "") for s in job.get("steps", []))
                continue
            installing.append(f"{name}:{job_name}")
            job_steps = job["steps"]
            checkouts = [i for i, s in enumerate(job_steps) if _is_checkout(s)]
            assert checkouts and job_steps.index(install) < min(checkouts), (name, job_name)
            assert install["working-directory"] == "${{ runner.temp }}"
            assert install["env"] == {
                "ILAB_REPOSITORY": "${{ inputs.ilab-repository }}",
                "ILAB_REF": "${{ inputs.ilab-ref }}",
            }
            script = install["run"]
            assert '[[ "$ILAB_REF" =~ ^[0-9a-f]{40}$ ]]' in script  # a tag or branch is refused
            assert '"$src/.github/install/install.sh" "$src" "$RUNNER_TEMP/ilab-gitops"' in script
    assert installing == [
        "ilab-render.yml:check",
        "ilab-render.yml:commit",
        "ilab-results-sync.yml:sync",
        "ilab-validate.yml:validate",
    ]


def test_no_script_installs_or_runs_python_from_the_checkout(
    reusable: dict[str, dict[str, Any]],
) -> None:
    """No `pip install` or `python -m` where the working directory is the PR checkout."""
    for name, workflow in reusable.items():
        for script in scripts(workflow):
            assert "pip" not in script, name
            assert not re.search(r"\bpython3?\b", script), name
    text = (ROOT / ".github" / "install" / "install.sh").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    pythons = re.findall(r"(?:python3?\}?|bin/python\"?) (-\S+)", code)
    assert pythons and set(pythons) == {"-I"}, pythons
    assert "--require-hashes -r" in text and "--no-index --no-build-isolation" in text


def test_every_checkout_drops_its_credentials(reusable: dict[str, dict[str, Any]]) -> None:
    for name, workflow in reusable.items():
        for step in steps(workflow):
            if _is_checkout(step):
                assert step["with"]["persist-credentials"] is False, name
    for name in ("ilab-render.yml", "ilab-results-sync.yml"):
        assert "zizmor: ignore" not in (REUSABLE / name).read_text()


def test_tokens_reach_git_only_through_the_environment(
    reusable: dict[str, dict[str, Any]],
) -> None:
    """The pushing steps hand git the token via GIT_CONFIG_*, never via .git/config."""
    commit = reusable["ilab-render.yml"]["jobs"]["commit"]["steps"][-1]
    assert commit["env"]["PUSH_TOKEN"] == "${{ github.token }}"
    assert "env -u PUSH_TOKEN ilab-gitops render" in commit["run"]
    sync = next(
        s
        for s in reusable["ilab-results-sync.yml"]["jobs"]["sync"]["steps"]
        if "env" in s and "GITHUB_TOKEN" in s["env"]
    )
    for step in (commit, sync):
        assert 'echo "::add-mask::$auth"' in step["run"]
        assert 'GIT_CONFIG_KEY_0="http.$GITHUB_SERVER_URL/.extraheader"' in step["run"]
        assert "git config" not in step["run"]


def test_render_push_retries_a_bounded_number_of_times(
    reusable: dict[str, dict[str, Any]],
) -> None:
    commit = reusable["ilab-render.yml"]["jobs"]["commit"]["steps"][-1]
    assert commit["env"]["TRIES"] == "5"
    script = commit["run"]
    assert 'for try in $(seq 1 "$TRIES"); do' in script
    assert "git reset --quiet --hard FETCH_HEAD" in script
    assert script.rstrip().endswith("exit 1")


def test_callers_pin_the_same_commit_they_install(callers: dict[str, dict[str, Any]]) -> None:
    for name, workflow in callers.items():
        [job] = workflow["jobs"].values()
        repo, _, ref = job["uses"].partition("/.github/workflows/")
        assert ref.endswith(f"@{SHA}"), name
        assert workflow["cache-mode"] == "none", name
        if name == "pr-comment.yml":
            continue  # installs nothing
        assert job["with"]["ilab-repository"] == repo, name
        assert job["with"]["ilab-ref"] == SHA, name


def _requirements(text: str) -> dict[str, list[str]]:
    """Lock file -> {name: [sha256, ...]} (pip's hash-checking format)."""
    found: dict[str, list[str]] = {}
    for entry in text.replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        name = re.split(r"[=<>;\s\[]", entry.strip(), maxsplit=1)[0].lower().replace("_", "-")
        found[name] = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
    return found


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    """Every runtime dependency of ilab-gitops[repo] and the build backend, pinned within
    pyproject's bounds, each with hashes. A failure here means: run `make lock`."""
    import tomllib

    from packaging.requirements import Requirement

    text = LOCK.read_text()
    locked = _requirements(text)
    assert locked and all(hashes for hashes in locked.values()), locked
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.MULTILINE))
    assert {n.lower().replace("_", "-") for n in pins} == set(locked)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["repo"],
        *project["build-system"]["requires"],
    ]
    versions = {n.lower().replace("_", "-"): v for n, v in pins.items()}
    for line in wanted:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in versions, f"{name} is not in the lock: run `make lock`"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"lock pins {name}=={versions[name]}, outside {line!r}: run `make lock`"
        )
    assert "make lock" in text.splitlines()[1]


def _install_script(reusable: dict[str, dict[str, Any]]) -> str:
    job = reusable["ilab-validate.yml"]["jobs"]["validate"]
    step = _install_step(job)
    assert step is not None
    return str(step["run"])


@pytest.mark.parametrize("ref", ["v1.0.0", "main", SHA[:12], SHA.upper(), SHA + "0"])
def test_install_refuses_anything_but_a_commit_sha(
    reusable: dict[str, dict[str, Any]], tmp_path: Path, ref: str
) -> None:
    done = subprocess.run(
        ["bash", "-e", "-c", _install_script(reusable)],
        env={"PATH": os.environ["PATH"], "ILAB_REF": ref, "RUNNER_TEMP": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stdout.startswith("::error::ilab-ref must be the full commit SHA")
    assert list(tmp_path.iterdir()) == []
