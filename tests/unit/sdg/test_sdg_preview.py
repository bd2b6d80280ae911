"""The PR preview of a run that generates its SDG data, and step diffs across the switch."""

from __future__ import annotations

from pathlib import Path

from ilab_gitops.manifests import STEP_IDS
from ilab_gitops.runsrepo.comment import pr_comment
from tests.unit.repo.specs import diff, example_run, only

TARBALL = "    secretRef: {name: sdg-object-store}\n"
GENERATE = (
    "    generate:\n      teacherSecretRef: {name: teacher-server}\n      numInstructions: 40\n"
)
PRS = {
    "    commit: 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432\n": (
        "    commit: 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432\n    pullRequests: [17, 23]\n"
    )
}


def generating(extra: dict[str, str] | None = None) -> str:
    return example_run(replacements={TARBALL: GENERATE, **PRS, **(extra or {})})


def test_new_generate_run_says_what_sdg_will_do(tmp_path: Path) -> None:
    report = diff(tmp_path, {}, {"runs/a.yaml": generating()})
    run = only(report)
    assert [s.step_id for s in run.steps] == ["sdg", *STEP_IDS]
    assert [s.action for s in run.steps] == ["run"] * 8
    assert "PersistentVolumeClaim/granite-a-workspace" in run.steps[0].objects.added
    notes = "\n".join(run.notes)
    assert "step sdg runs before prepare" in notes
    assert "taxonomy commit 9f8e7d6c5b4a changes against branch main" in notes
    assert "taxonomy pull requests #17, #23" in notes
    assert "Secret teacher-server" in notes
    assert "pipeline full, 40 instructions per seed example, batch size 128, 2 workers" in notes
    assert "re-runs SDG and every step after it" in notes
    body = pr_comment(report)
    assert "Secret teacher\\-server" in body  # notes are escaped prose
    assert "| 01 | `sdg` | runs |" in body


def test_tarball_runs_get_no_sdg_notes(tmp_path: Path) -> None:
    run = only(diff(tmp_path, {}, {"runs/a.yaml": example_run()}))
    assert not any("SDG" in note for note in run.notes)


def test_changing_instructions_reruns_sdg_and_everything_after(tmp_path: Path) -> None:
    before = generating()
    after = generating({"      numInstructions: 40\n": "      numInstructions: 41\n"})
    run = only(diff(tmp_path, {"runs/a.yaml": before}, {"runs/a.yaml": after}))
    assert run.first_rerun is not None and run.first_rerun.step_id == "sdg"
    assert [s.action for s in run.steps] == ["rerun"] * 8
    assert [r.field for r in run.reasons] == ["spec.sdgData.generate.numInstructions"]
    assert "step sdg re-runs before prepare" in "\n".join(run.notes)


def test_unrelated_change_leaves_sdg_untouched(tmp_path: Path) -> None:
    lr = {"learningRate: 6e-6": "learningRate: 1e-5"}
    run = only(diff(tmp_path, {"runs/a.yaml": generating()}, {"runs/a.yaml": generating(lr)}))
    assert [s.action for s in run.steps] == ["untouched"] * 3 + ["rerun"] * 5
    assert "step sdg does not re-run" in "\n".join(run.notes)


def test_switching_to_generate_and_back(tmp_path: Path) -> None:
    tarball, generate = example_run(), generating()
    to_generate = only(diff(tmp_path, {"runs/a.yaml": tarball}, {"runs/a.yaml": generate}))
    assert [s.step_id for s in to_generate.steps] == ["sdg", *STEP_IDS]
    assert [s.action for s in to_generate.steps] == ["rerun"] * 8
    back = only(diff(tmp_path, {"runs/a.yaml": generate}, {"runs/a.yaml": tarball}))
    assert [(s.step_id, s.action) for s in back.steps][:2] == [
        ("sdg", "pruned"),
        ("prepare", "rerun"),
    ]
    sdg = back.steps[0]
    assert sdg.name is None and sdg.previous is not None
    assert sdg.objects.added == () and f"Job/{sdg.previous}" in sdg.objects.pruned
    # The workspace volume moves from sdg's objects to prepare's: same object, kept.
    assert "PersistentVolumeClaim/granite-a-workspace" in back.steps[1].objects.added
