"""`diff` and `pr-comment` in-process against real repositories: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git
import pytest

from ilab_gitops.runsrepo.comment import MARKER
from ilab_gitops.runsrepo.scaffold import reference_environments
from tests.unit.repo.conftest import Cli
from tests.unit.repo.gitutil import commit_all
from tests.unit.repo.specs import LR, example_run


@pytest.fixture
def root(tmp_path: Path, git_env: dict[str, str]) -> Path:
    """A runs repo with one run on main; the working tree is where each test edits."""
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    root = Path(repo.working_tree_dir or "")
    (root / "runs").mkdir()
    (root / "environments").mkdir()
    for name, text in reference_environments().items():
        (root / "environments" / name).write_text(text)
    (root / "runs" / "a.yaml").write_text(example_run())
    commit_all(repo, "first run")
    return root


def name_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("  name:"))


def test_diff_text_for_a_learning_rate_change(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").write_text(example_run(replacements=LR))
    result = run_cli("diff", "--base", "main", cwd=root)
    line = example_run().splitlines().index("      learningRate: 6e-6") + 1
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines()[:3] == [
        "granite-a  rerun      runs/a.yaml: re-runs from train-phase-2: train-phase-2, "
        "eval-mt-bench, eval-final, upload, publish; untouched: prepare, train-phase-1",
        f"    runs/a.yaml:{line}:21: spec.training.skills.learningRate: 6e-06 -> 1e-05",
        "    03-train-phase-2: 2 added, 2 pruned",
    ]
    assert result.out.splitlines()[-1] == (
        "0 new, 1 rerun, 0 unchanged, 0 removed, 0 forbidden (working tree against main)"
    )


def test_diff_json_describes_steps_and_reasons(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "b.yaml").write_text(example_run("granite-b"))
    result = run_cli("diff", "--base", "main", "--output", "json", cwd=root)
    assert result.code == 0
    data = json.loads(result.out)
    assert data["ok"] is True and data["base"] == "main"
    assert data["summary"]["new"] == 1 and data["summary"]["unchanged"] == 1
    new = next(r for r in data["runs"] if r["run"] == "granite-b")
    assert new["status"] == "new" and len(new["steps"]) == 7
    assert {s["action"] for s in new["steps"]} == {"run"}


def test_diff_format_json_is_the_json_report_with_nothing_on_stderr(
    root: Path, run_cli: Cli
) -> None:
    (root / "runs" / "a.yaml").write_text(example_run("granite-z"))  # a forbidden rename
    by_format = run_cli("diff", "--base", "main", "--format", "json", cwd=root)
    by_output = run_cli("diff", "--base", "main", "--output", "json", cwd=root)
    assert (by_format.code, by_format.err) == (2, "")
    assert by_format.out == by_output.out
    data = json.loads(by_format.out)
    assert data["ok"] is False
    assert [f["code"] for f in data["forbidden"]] == ["run-renamed"]


def test_diff_rename_is_forbidden_with_location(root: Path, run_cli: Cli) -> None:
    text = example_run("granite-z")
    (root / "runs" / "a.yaml").write_text(text)
    result = run_cli("diff", "--base", "main", "--format", "text", cwd=root)
    assert result.code == 2
    assert result.err.startswith(
        f"runs/a.yaml:{name_line(text)}:9: error[run-renamed] metadata.name: changed from "
        '"granite-a" to "granite-z"'
    )
    assert "granite-z  forbidden" in result.out


def test_diff_github_annotations(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").unlink()
    result = run_cli("diff", "--base", "main", "--format", "github", cwd=root)
    assert result.code == 2
    assert result.err.startswith(
        f"::error file=runs/a.yaml,line={name_line(example_run())},col=9,"
        "title=run-deleted metadata.name::"
    )


def test_allow_removals_lets_a_deletion_pass(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").unlink()
    result = run_cli("diff", "--base", "main", "--allow-removals", cwd=root)
    assert result.code == 0, result.err
    assert "granite-a  removed" in result.out


def test_invalid_working_tree_exits_2_and_is_not_a_deletion(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").write_text(example_run(replacements={"epochs: 7": "epochs: x"}))
    result = run_cli("diff", "--base", "main", "--format", "text", cwd=root)
    assert result.code == 2
    assert "error[wrong-type] spec.training.knowledge.epochs" in result.err
    assert "run-deleted" not in result.err
    assert "granite-a  invalid" in result.out


def test_invalid_file_on_the_base_is_only_a_warning(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "junk.yaml").write_text("kind: Nonsense\n")
    commit_all(git.Repo(root), "junk")
    (root / "runs" / "junk.yaml").unlink()
    result = run_cli("diff", "--base", "main", "--format", "text", cwd=root)
    assert result.code == 0
    assert "runs/junk.yaml:1:7: warning[unknown-kind]" in result.err
    assert "(in main)" in result.err


def test_paths_are_shown_relative_to_the_current_directory(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").write_text(example_run(replacements=LR))
    result = run_cli("diff", "--base", "main", ".", "-e", "../environments", cwd=root / "runs")
    assert result.code == 0, result.err
    assert result.out.startswith("granite-a  rerun      a.yaml: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "nope"], 'ilab-gitops diff: unknown git ref "nope"'),
        (["--base", "main", "/"], "ilab-gitops diff: paths must lie inside the git repository"),
    ],
)
def test_usage_errors_exit_2(root: Path, run_cli: Cli, args: list[str], message: str) -> None:
    result = run_cli("diff", *args, cwd=root)
    assert result.code == 2
    assert result.err.startswith(message)


def test_outside_a_repository(tmp_path: Path, run_cli: Cli, git_env: dict[str, str]) -> None:
    result = run_cli("diff", "--base", "main", cwd=tmp_path)
    assert (result.code, result.err) == (
        2,
        f"ilab-gitops diff: {tmp_path}: not inside a git repository\n",
    )


def test_pr_comment_is_written_even_with_forbidden_changes(root: Path, run_cli: Cli) -> None:
    (root / "runs" / "a.yaml").unlink()
    out, full = root.parent / "comment.md", root.parent / "full.md"
    result = run_cli(
        "pr-comment", "--base", "main", "--out", str(out), "--full-out", str(full), cwd=root
    )
    assert (result.code, result.out) == (0, "")
    body = out.read_text()
    assert body.splitlines()[0] == MARKER
    assert "#### Forbidden changes (1)" in body and "**run-deleted**" in body
    assert full.read_text() == body


def test_pr_comment_to_stdout_and_truncated(root: Path, run_cli: Cli) -> None:
    for i in range(12):
        (root / "runs" / f"n{i}.yaml").write_text(example_run(f"granite-n{i}"))
    result = run_cli("pr-comment", "--base", "main", "--max-chars", "3000", cwd=root)
    assert result.code == 0
    assert result.out.startswith(MARKER + "\n")
    assert len(result.out) <= 3000
    assert "**Truncated**" in result.out


def test_importing_the_cli_does_not_import_git() -> None:
    code = "import sys, ilab_gitops.cli.typer_app; print('git' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
