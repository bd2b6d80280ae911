"""Spec texts and pure (git-free) diffs for the runs-repo tests."""

from __future__ import annotations

from pathlib import Path

from ilab_gitops.runsrepo.classify import DiffReport, RunDiff, compare
from ilab_gitops.runsrepo.history import historic_runs
from ilab_gitops.runsrepo.scaffold import reference_environments, template
from ilab_gitops.runsrepo.snapshot import RepoPaths, Snapshot, from_blobs

EXAMPLE = template("runs/example.yaml").replace("%%ENVIRONMENT%%", "kind-dev")


def example_run(name: str = "granite-a", replacements: dict[str, str] | None = None) -> str:
    """The scaffold's example run, renamed, with literal text replacements applied."""
    text = EXAMPLE.replace("name: granite-example", f"name: {name}")
    for old, new in (replacements or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text


LR = {"learningRate: 6e-6": "learningRate: 1e-5"}


def snapshot(
    tmp_path: Path,
    runs: dict[str, str],
    envs: dict[str, str] | None = None,
    label: str = "origin/main",
) -> Snapshot:
    if envs is None:
        envs = {f"environments/{k}": v for k, v in reference_environments().items()}
    return from_blobs(
        label,
        [(p, t.encode()) for p, t in runs.items()],
        [(p, t.encode()) for p, t in envs.items()],
        RepoPaths.at(tmp_path, tmp_path),
    )


def diff(
    tmp_path: Path,
    base: dict[str, str],
    head: dict[str, str],
    *,
    head_envs: dict[str, str] | None = None,
    history: list[tuple[str, str, bytes]] | None = None,
    allow_removals: bool = False,
) -> DiffReport:
    return compare(
        snapshot(tmp_path, base),
        snapshot(tmp_path, head, head_envs, label="working tree"),
        historic_runs(history or []),
        allow_removals=allow_removals,
    )


def only(report: DiffReport) -> RunDiff:
    assert len(report.runs) == 1, report.runs
    return report.runs[0]


def actions(run: RunDiff) -> list[str]:
    return [s.action for s in run.steps]
