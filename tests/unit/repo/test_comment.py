"""The sticky PR comment: marker, order of sections, escaping, and the size limit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.runsrepo.classify import DiffReport, Reason, RunDiff
from ilab_gitops.runsrepo.comment import GITHUB_LIMIT, MARKER, code, plain, pr_comment, size
from tests.unit.repo.specs import LR, diff, example_run, only

URL = "https://github.com/o/r/actions/runs/1"


def rerun(tmp_path: Path) -> RunDiff:
    return only(
        diff(
            tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run(replacements=LR)}
        )
    )


def test_comment_starts_with_the_marker_and_explains_a_rerun(tmp_path: Path) -> None:
    body = pr_comment(DiffReport("origin/main", (rerun(tmp_path),)))
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert "Compared with `origin/main`: 0 new, **1 rerun**" in body
    assert (
        "| `granite-a` | re-run from `train-phase-2` | `train-phase-2` ... `publish` (5) | "
        "`prepare`, `train-phase-1` | +10 -10 |"
    ) in lines
    line = example_run().splitlines().index("      learningRate: 6e-6") + 1
    assert (
        f"- `spec.training.skills.learningRate`: `6e-06` -> `1e-05` (`runs/a.yaml:{line}:21`)"
        in lines
    )
    assert "Truncated" not in body
    assert body.count("<details>") == body.count("</details>")


def test_forbidden_changes_come_first(tmp_path: Path) -> None:
    report = diff(tmp_path, {"runs/a.yaml": example_run()}, {})
    body = pr_comment(report)
    assert body.index("#### Forbidden changes (1)") < body.index("#### Runs")
    assert "**This PR cannot be merged as it is**" in body
    assert "| `granite-a` | **forbidden** (removed) |" in body


def test_unchanged_runs_are_only_listed(tmp_path: Path) -> None:
    report = diff(tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run()})
    body = pr_comment(report)
    assert "#### Runs" not in body
    assert "<details><summary>Unchanged runs (1)</summary>\n\n`granite-a`\n\n</details>" in body


def test_user_text_cannot_inject_markdown_or_html() -> None:
    assert code("a`b") == "``a`b``"
    assert code("x\n## heading") == "`x ## heading`"
    assert code("a|b", cell=True) == "`a\\|b`"
    assert plain("<img src=x> | **b**") == "\\<img src\\=x\\> \\| \\*\\*b\\*\\*"
    reason = Reason("spec", "spec.x", "</details><script>", "`y`", "")
    run = RunDiff("granite-a", "runs/a.yaml", "rerun", reasons=(reason,))
    body = pr_comment(DiffReport("main", (run,)))
    assert '`"</details><script>"`' in body
    assert body.count("</details>") == body.count("<details>") + 1  # the one inside code


def test_a_huge_report_is_cut_at_sections_with_a_pointer(tmp_path: Path) -> None:
    one = rerun(tmp_path)
    runs = tuple(dataclasses.replace(one, run=f"granite-{i:04d}") for i in range(600))
    body = pr_comment(DiffReport("origin/main", runs), details_url=URL)
    assert size(body) <= 64_000 < GITHUB_LIMIT
    assert body.splitlines()[0] == MARKER
    assert body.count("<details>") == body.count("</details>")
    assert f"the `ilab-pr-summary` artifact of [this workflow run]({URL})" in body
    assert "**Truncated**" in body


def test_a_huge_list_of_forbidden_changes_is_cut_between_lines() -> None:
    violations = tuple(
        Diagnostic(f"runs/r{i}.yaml", 4, 9, "run-deleted", "metadata.name", "x" * 80)
        for i in range(3000)
    )
    run = RunDiff("granite-a", "runs/a.yaml", "removed", violations=violations)
    body = pr_comment(DiffReport("main", (run,)), budget=20_000)
    assert size(body) <= 20_000
    assert "#### Forbidden changes (3000)" in body
    tail = [line for line in body.splitlines() if line.startswith("- ... and ")]
    assert len(tail) == 1
    assert "**Truncated**: 2 of 4 sections shown" in body


def test_budget_counts_utf16_units() -> None:
    assert size("a") == 1
    assert size("\U0001f600") == 2
