"""Classification of runs between two snapshots, without git: every status and every rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilab_gitops.manifests import STEP_IDS
from ilab_gitops.runsrepo.scaffold import reference_environments
from tests.unit.repo.specs import LR, actions, diff, example_run, only


def test_new_run_runs_every_step(tmp_path: Path) -> None:
    run = only(diff(tmp_path, {}, {"runs/a.yaml": example_run()}))
    assert (run.status, run.run, run.path) == ("new", "granite-a", "runs/a.yaml")
    assert actions(run) == ["run"] * len(STEP_IDS)
    assert all(s.previous is None and s.name for s in run.steps)
    assert "PersistentVolumeClaim/granite-a-workspace" in run.steps[0].objects.added


def test_comment_only_change_is_unchanged(tmp_path: Path) -> None:
    text = example_run()
    report = diff(tmp_path, {"runs/a.yaml": text}, {"runs/a.yaml": "# note\n" + text})
    run = only(report)
    assert (run.status, run.reasons, report.ok) == ("unchanged", (), True)
    assert all(s.objects.empty for s in run.steps)


def test_learning_rate_of_phase_two_reruns_from_train_phase_2(tmp_path: Path) -> None:
    report = diff(
        tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run(replacements=LR)}
    )
    run = only(report)
    assert run.status == "rerun"
    assert run.first_rerun is not None and run.first_rerun.step_id == "train-phase-2"
    assert actions(run) == ["untouched"] * 2 + ["rerun"] * 5
    assert [(r.source, r.field, r.old, r.new) for r in run.reasons] == [
        ("spec", "spec.training.skills.learningRate", 6e-6, 1e-5)
    ]
    line = example_run().splitlines().index("      learningRate: 6e-6") + 1
    assert run.reasons[0].location == f"runs/a.yaml:{line}:21"
    step = run.steps[2]
    assert step.name != step.previous
    assert step.objects.added == (f"ConfigMap/{step.name}", f"PyTorchJob/{step.name}")
    assert step.objects.pruned == (f"ConfigMap/{step.previous}", f"PyTorchJob/{step.previous}")
    assert run.steps[0].objects.empty and run.steps[1].objects.empty


@pytest.mark.parametrize(
    ("replacement", "first"),
    [
        ({"  attempt: 0\n  baseModel": "  attempt: 1\n  baseModel"}, "prepare"),
        ({"attempt: 0              # retry train-phase-2": "attempt: 1"}, "train-phase-2"),
        ({"attempt: 0              # retry eval-final": "attempt: 4"}, "eval-final"),
        ({"attempt: 0                # retry publish": "attempt: 1"}, "publish"),
    ],
)
def test_bumping_an_attempt_reruns_from_its_step(
    tmp_path: Path, replacement: dict[str, str], first: str
) -> None:
    run = only(
        diff(
            tmp_path,
            {"runs/a.yaml": example_run()},
            {"runs/a.yaml": example_run(replacements=replacement)},
        )
    )
    assert run.status == "rerun"
    assert run.first_rerun is not None and run.first_rerun.step_id == first
    assert [r.field.rsplit(".", 1)[-1] for r in run.reasons] == ["attempt"]


def test_environment_change_names_the_profile_field(tmp_path: Path) -> None:
    envs = {f"environments/{k}": v for k, v in reference_environments().items()}
    envs["environments/kind-dev.yaml"] = envs["environments/kind-dev.yaml"].replace(
        "train:dev", "train:dev2"
    )
    report = diff(
        tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run()}, head_envs=envs
    )
    run = only(report)
    assert run.status == "rerun"  # an environment-only change is never "unchanged"
    assert run.first_rerun is not None and run.first_rerun.step_id == "train-phase-1"
    assert actions(run) == ["untouched"] + ["rerun"] * (len(STEP_IDS) - 1)
    assert [(r.source, r.field) for r in run.reasons] == [
        ("environment kind-dev", "spec.images.train")
    ]
    assert run.reasons[0].location.startswith("environments/kind-dev.yaml:")


def test_storage_size_changes_the_volume_in_place_without_rerun(tmp_path: Path) -> None:
    envs = {f"environments/{k}": v for k, v in reference_environments().items()}
    envs["environments/kind-dev.yaml"] = envs["environments/kind-dev.yaml"].replace(
        "size: 20Gi", "size: 40Gi"
    )
    run = only(
        diff(
            tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run()}, head_envs=envs
        )
    )
    assert run.status == "unchanged"
    assert run.steps[0].objects.changed == ("PersistentVolumeClaim/granite-a-workspace",)
    assert [r.field for r in run.reasons] == ["spec.storage.size"]


def test_renaming_a_run_is_forbidden_at_its_name(tmp_path: Path) -> None:
    report = diff(
        tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": example_run("granite-b")}
    )
    run = only(report)  # the old name is explained by the rename, not reported as removed
    assert (run.run, run.status, run.change) == ("granite-b", "forbidden", "new")
    [violation] = run.violations
    line = (
        example_run()
        .splitlines()
        .index("  name: granite-example".replace("granite-example", "granite-a"))
        + 1
    )
    assert (violation.path, violation.line, violation.column, violation.code) == (
        "runs/a.yaml",
        line,
        9,
        "run-renamed",
    )
    assert 'changed from "granite-a" to "granite-b"' in violation.message
    assert not report.ok


def test_moving_a_file_keeps_the_run(tmp_path: Path) -> None:
    run = only(diff(tmp_path, {"runs/a.yaml": example_run()}, {"runs/team/a.yaml": example_run()}))
    assert (run.status, run.notes) == ("unchanged", ("moved from runs/a.yaml",))


def test_deleting_a_run_is_forbidden(tmp_path: Path) -> None:
    report = diff(tmp_path, {"runs/a.yaml": example_run()}, {})
    run = only(report)
    assert (run.status, run.change) == ("forbidden", "removed")
    assert [v.code for v in run.violations] == ["run-deleted"]
    assert run.violations[0].path == "runs/a.yaml"
    assert not report.ok


def test_allowed_removal_prunes_everything_but_the_volume(tmp_path: Path) -> None:
    report = diff(tmp_path, {"runs/a.yaml": example_run()}, {}, allow_removals=True)
    run = only(report)
    assert (run.status, report.ok) == ("removed", True)
    assert actions(run) == ["pruned"] * len(STEP_IDS)
    assert run.steps[0].objects.kept == ("PersistentVolumeClaim/granite-a-workspace",)
    assert "PersistentVolumeClaim/granite-a-workspace" not in run.steps[0].objects.pruned


def test_changing_the_environment_is_forbidden(tmp_path: Path) -> None:
    moved = example_run(replacements={"environment: kind-dev": "environment: multi-node-gpu"})
    run = only(diff(tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": moved}))
    assert [v.code for v in run.violations] == ["environment-changed"]
    assert run.violations[0].field == "spec.environment"
    assert run.first_rerun is not None and run.first_rerun.step_id == "prepare"


def test_lowering_an_attempt_is_forbidden_at_the_counter(tmp_path: Path) -> None:
    bumped = {"attempt: 0              # retry train-phase-2": "attempt: 2"}
    lowered = {"attempt: 0              # retry train-phase-2": "attempt: 1"}
    run = only(
        diff(
            tmp_path,
            {"runs/a.yaml": example_run(replacements=bumped)},
            {"runs/a.yaml": example_run(replacements=lowered)},
        )
    )
    [violation] = run.violations
    assert (violation.code, violation.field) == (
        "attempt-decreased",
        "spec.training.skills.attempt",
    )
    line = example_run(replacements=lowered).splitlines().index("      attempt: 1") + 1
    assert (violation.line, violation.column) == (line, 16)


def test_reusing_a_deleted_name_with_another_spec_is_forbidden(tmp_path: Path) -> None:
    history = [("c" * 40, "runs/old.yaml", example_run().encode())]
    report = diff(tmp_path, {}, {"runs/a.yaml": example_run(replacements=LR)}, history=history)
    [violation] = only(report).violations
    assert violation.code == "name-reused"
    assert "runs/old.yaml, deleted in cccccccccccc" in violation.message


def test_restoring_a_deleted_run_unchanged_is_allowed(tmp_path: Path) -> None:
    history = [("d" * 40, "runs/old.yaml", example_run().encode())]
    run = only(diff(tmp_path, {}, {"runs/a.yaml": example_run()}, history=history))
    assert (run.status, run.notes) == ("new", ("restores the run deleted in dddddddddddd",))


def test_a_file_that_no_longer_validates_is_not_a_deletion(tmp_path: Path) -> None:
    broken = example_run(replacements={"epochs: 7": "epochs: seven"})
    report = diff(tmp_path, {"runs/a.yaml": example_run()}, {"runs/a.yaml": broken})
    run = only(report)
    assert (run.status, run.violations) == ("invalid", ())


def test_counts_and_order(tmp_path: Path) -> None:
    base = {"runs/a.yaml": example_run(), "runs/b.yaml": example_run("granite-b")}
    head = {
        "runs/a.yaml": example_run(),
        "runs/b.yaml": example_run("granite-b", LR),
        "runs/c.yaml": example_run("granite-c"),
    }
    report = diff(tmp_path, base, head)
    assert [r.run for r in report.runs] == ["granite-a", "granite-b", "granite-c"]
    assert report.counts() == {
        "new": 1,
        "rerun": 1,
        "unchanged": 1,
        "removed": 0,
        "invalid": 0,
        "forbidden": 0,
    }
