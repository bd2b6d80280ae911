"""Environment changes: their own class in diff and pr-comment, flagged for the platform owners."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from ilab_gitops.runsrepo.classify import DiffReport, compare
from ilab_gitops.runsrepo.comment import pr_comment
from ilab_gitops.runsrepo.envdiff import APPROVAL_CODE, area_of
from ilab_gitops.runsrepo.report import as_json, as_text
from ilab_gitops.runsrepo.scaffold import reference_environments
from tests.unit.repo.conftest import Cli
from tests.unit.repo.gitutil import commit_all
from tests.unit.repo.specs import example_run, snapshot

KIND_DEV = reference_environments()["kind-dev.yaml"]
ENVS = {f"environments/{k}": v for k, v in reference_environments().items()}
RUNS = {"runs/a.yaml": example_run()}


def edited(**replacements: str) -> dict[str, str]:
    text = KIND_DEV
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return {**ENVS, "environments/kind-dev.yaml": text}


def report_for(
    tmp_path: Path, head_envs: dict[str, str], base_envs: dict[str, str] = ENVS
) -> DiffReport:
    return compare(
        snapshot(tmp_path, RUNS, base_envs),
        snapshot(tmp_path, RUNS, head_envs, label="working tree"),
    )


def test_an_edited_profile_is_its_own_class_grouped_for_review(tmp_path: Path) -> None:
    head = edited(
        **{
            "namespace: ilab-dev": "namespace: ilab-dev2",
            "fetch: localhost:5001/ilab-gitops/fetch:dev": "fetch: localhost:5001/evil/fetch:dev",
            "  gpu:\n    perNode: 0\n": "  gpu:\n    perNode: 0\n  tolerations:\n"
            "    - key: dedicated\n      operator: Exists\n",
        }
    )
    report = report_for(tmp_path, head)
    assert report.ok  # not forbidden: diff exits 0
    (env,) = report.environments
    assert (env.name, env.change, env.path) == ("kind-dev", "changed", "environments/kind-dev.yaml")
    assert env.areas == ["namespace", "tolerations", "images"]
    assert [(s.area, s.field) for s in env.settings] == [
        ("namespace", "spec.namespace"),
        ("tolerations", "spec.tolerations"),
        ("images", "spec.images.fetch"),
    ]
    assert env.settings[0].old == "ilab-dev" and env.settings[0].new == "ilab-dev2"
    line = head["environments/kind-dev.yaml"].splitlines().index("  namespace: ilab-dev2") + 1
    assert env.settings[0].location == f"environments/kind-dev.yaml:{line}:14"
    assert env.runs == ("granite-a",)
    assert env.opt_ins == ("accepts images not pinned by digest (opted in)",)
    (warning,) = report.approvals
    assert (warning.severity, warning.code, warning.path) == (
        "warning",
        APPROVAL_CODE,
        "environments/kind-dev.yaml",
    )
    assert "changes environment 'kind-dev' (namespace, tolerations, images)" in warning.message
    # The run that uses it re-runs, as before, and stays a run.
    assert [r.status for r in report.runs] == ["rerun"]


def test_added_and_removed_profiles(tmp_path: Path) -> None:
    added = KIND_DEV.replace("name: kind-dev", "name: extra").replace(
        "namespace: ilab-dev", "namespace: ilab-extra"
    )
    report = report_for(tmp_path, {**ENVS, "environments/extra.yaml": added})
    assert [(e.name, e.change) for e in report.environments] == [("extra", "added")]
    fields = {s.field for s in report.environments[0].settings}
    assert {"spec.namespace", "spec.images.fetch", "spec.engines"} <= fields
    assert report.environments[0].runs == ()
    without = {k: v for k, v in ENVS.items() if "multi-node" not in k}
    report = report_for(tmp_path, without)
    assert [(e.name, e.change) for e in report.environments] == [("multi-node-gpu", "removed")]
    assert "removes environment 'multi-node-gpu', which is on origin/main" in (
        report.approvals[0].message
    )


def test_comments_only_and_unchanged_profiles_are_not_reported(tmp_path: Path) -> None:
    head = edited(**{"# Development profile": "# A reworded comment. Development profile"})
    assert report_for(tmp_path, head).environments == ()
    assert report_for(tmp_path, ENVS).environments == ()


def test_a_profile_that_no_longer_validates_is_not_called_removed(tmp_path: Path) -> None:
    report = report_for(tmp_path, edited(**{"namespace: ilab-dev": "namespace: kube-system"}))
    assert report.environments == ()
    assert "system-namespace" in {d.code for d in report.diagnostics}


def test_text_json_and_comment_flag_the_owners(tmp_path: Path) -> None:
    report = report_for(tmp_path, edited(**{"namespace: ilab-dev": "namespace: team-a"}))
    text = as_text(report)
    assert (
        "environment kind-dev  changed (namespace)  environments/kind-dev.yaml: "
        "needs the platform owners' approval"
    ) in text
    assert 'namespace: spec.namespace: "ilab-dev" -> "team-a"' in text
    assert "1 environment change(s) need the platform owners' approval" in text
    data = json.loads(as_json(report))
    assert data["needsOwnerApproval"] is True
    (env,) = data["environments"]
    assert (env["environment"], env["change"], env["areas"]) == (
        "kind-dev",
        "changed",
        ["namespace"],
    )
    body = pr_comment(report)
    assert "**1 environment change(s) need the platform owners' approval.**" in body
    assert "#### Environment changes (1): platform owners' approval needed" in body
    assert "- `kind-dev` in `environments/kind-dev.yaml`: **changed** (namespace)" in body
    assert '  - namespace: `spec.namespace`: `"ilab-dev"` -> `"team-a"`' in body
    assert body.index("Environment changes") < body.index("#### Runs")


def test_values_in_the_section_stay_inert(tmp_path: Path) -> None:
    """Field values reach the comment only through the comment's own code/plain helpers."""
    head = edited(**{"fetch: localhost:5001/ilab-gitops/fetch:dev": "fetch: localhost:5001/a/b:x"})
    head["environments/kind-dev.yaml"] = head["environments/kind-dev.yaml"].replace(
        "    storageClassName: standard", "    storageClassName: standard-x"
    )
    body = pr_comment(report_for(tmp_path, head))
    assert '  - storage: `spec.storage.storageClassName`: `"standard"` -> `"standard-x"`' in body


def test_turning_on_progress_statuses_is_a_privilege_the_owners_see(tmp_path: Path) -> None:
    engines = next(line for line in KIND_DEV.splitlines() if line.startswith("  engines:"))
    head = edited(**{engines: f"{engines}\n  commitStatusProgress: true"})
    report = report_for(tmp_path, head)
    (env,) = report.environments
    assert env.areas == ["privileges"]
    assert [(s.field, s.old, s.new) for s in env.settings] == [
        ("spec.commitStatusProgress", False, True)
    ]
    assert any("API token" in text for text in env.opt_ins)
    (warning,) = report.approvals
    assert "(privileges)" in warning.message
    # The run re-runs from its first training phase (docs/operations.md says so).
    (run,) = report.runs
    actions = {s.step_id: s.action for s in run.steps}
    assert run.status == "rerun" and actions.pop("prepare") == "untouched"
    assert set(actions.values()) == {"rerun"}


@pytest.mark.parametrize(
    ("path", "area"),
    [
        (("spec", "podSecurity", "runAsUser"), "privileges"),
        (("spec", "commitStatusProgress"), "privileges"),
        (("spec", "nodeSelector", "a"), "node selector"),
        (("spec", "kueue", "localQueue"), "Kueue queue"),
        (("spec", "flux", "namespace"), "engines"),
        (("spec", "allowTolerateAllTaints"), "tolerations"),
        (("spec", "storage", "size"), "storage"),
        (("metadata", "name"), "name"),
    ],
)
def test_areas_name_what_a_reviewer_judges(path: tuple[str, ...], area: str) -> None:
    assert area_of(path) == area


def test_diff_exits_zero_and_annotates_the_file(
    tmp_path: Path, git_env: dict[str, str], run_cli: Cli
) -> None:
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    root = Path(repo.working_tree_dir or "")
    (root / "runs").mkdir()
    (root / "environments").mkdir()
    for name, text in reference_environments().items():
        (root / "environments" / name).write_text(text)
    (root / "runs" / "a.yaml").write_text(example_run())
    commit_all(repo, "first run")
    target = root / "environments" / "kind-dev.yaml"
    target.write_text(target.read_text().replace("namespace: ilab-dev", "namespace: team-a"))
    result = run_cli("diff", "--base", "main", "--format", "github", cwd=root)
    assert result.code == 0, result.err
    line = target.read_text().splitlines().index("  name: kind-dev") + 1
    assert result.err.startswith(
        f"::warning file=environments/kind-dev.yaml,line={line},col=9,"
        f"title={APPROVAL_CODE} metadata.name::this PR changes environment 'kind-dev' (namespace)"
    )
    assert "environment kind-dev  changed (namespace)" in result.out
    comment = run_cli("pr-comment", "--base", "main", cwd=root)
    assert comment.code == 0 and "Environment changes (1)" in comment.out
