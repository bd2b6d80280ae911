"""final_eval: the real MT-Bench-Branch code on a real git taxonomy, local model servers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.steps import final_eval
from ilab_gitops.steps.outputs import FinalEvalOutput
from tests.steps.builders import base_params
from tests.steps.evaldata import write_eval_outputs
from tests.steps.openai_fake import FakeOpenAI, recording_server, use_as_judge
from tests.steps.test_train import fake_checkpoint

JUDGE_TOKEN = "judge-token-123"


def qna(*questions: str) -> str:
    lines = ["version: 3", "created_by: test", "seed_examples:"]
    for q in questions:
        lines += [f"  - question: {q}", f"    answer: The answer to {q}"]
    return "\n".join(lines) + "\n"


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def make_taxonomy(root: Path) -> Path:
    """main has one skill; the run's commit (detached HEAD, as SDG leaves it) adds another."""
    repo = root / "taxonomy"
    writing = repo / "compositional_skills" / "writing"
    writing.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (writing / "qna.yaml").write_text(qna("What rhymes with cat?", "Name a haiku rule."))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr-1")
    math_dir = repo / "compositional_skills" / "math"
    math_dir.mkdir()
    (math_dir / "qna.yaml").write_text(qna("What is 2 plus 2?"))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "add math")
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", "pr-1")
    return repo


def judge_reply(model: str, messages: list[dict[str, Any]]) -> str:
    text = "\n".join(m["content"] for m in messages)
    match = re.search(r"Answer by (candidate|base)", text)
    return (
        {"candidate": "Rating: [[8]]", "base": "Rating: [[4]]"}[match.group(1)]
        if match
        else "unrated"
    )


def test_candidate_vs_base_per_qna_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taxonomy = make_taxonomy(tmp_path)
    head = subprocess.run(
        ["git", "-C", str(taxonomy), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    candidate_dir = fake_checkpoint(tmp_path / "hf_format" / "samples_200")
    base_dir = fake_checkpoint(tmp_path / "prepare" / "model")
    mt, _ = write_eval_outputs(tmp_path / "eval", candidate_dir, base_dir)
    (tmp_path / "prepare" / "data").mkdir()
    served: list[tuple[str, Path]] = []

    with (
        FakeOpenAI(judge_reply, api_key=JUDGE_TOKEN) as judge,
        FakeOpenAI(lambda model, _m: f"Answer by {model}.") as models,
    ):
        use_as_judge(monkeypatch, judge, judge.url + "/")
        serve = recording_server(models.url, served)

        raw = base_params(
            tmp_path,
            "eval-final",
            mtBenchPath=str(mt),
            baseModelPath=str(base_dir),
            taxonomyPath=str(taxonomy),
            sdgDataPath=str(tmp_path / "prepare" / "data"),
            taxonomyBaseBranch="main",
            fewShots=5,
            batchSize="auto",
            maxWorkers=2,
            mergeSystemUserMessage=False,
        )
        params = final_eval.FinalEvalParams.model_validate(raw)
        final_eval.evaluate(params, serve=serve)

    assert served == [("candidate", candidate_dir), ("base", base_dir)]
    out = FinalEvalOutput.model_validate_json((params.output / "final_eval.json").read_bytes())
    assert (out.mtBenchBranch.base, out.mtBenchBranch.candidate) == (4.0, 8.0)
    assert out.mmluBranch is None  # no node_datasets_* in this SDG data
    by_path = {q.path: q for q in out.qnaFiles}
    assert sorted(by_path) == [
        "compositional_skills/math/qna.yaml",
        "compositional_skills/writing/qna.yaml",
    ]
    math_scores = by_path["compositional_skills/math/qna.yaml"]
    assert (math_scores.mtBenchBranchBase, math_scores.mtBenchBranchCandidate) == (None, 8.0)
    writing = by_path["compositional_skills/writing/qna.yaml"]
    assert (writing.mtBenchBranchBase, writing.mtBenchBranchCandidate) == (4.0, 8.0)
    assert len(writing.questions) == 2
    # The prepare step's taxonomy is untouched (still detached at the run's commit).
    after = subprocess.run(
        ["git", "-C", str(taxonomy), "status", "--porcelain", "-b"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "HEAD (no branch)" in after
    assert (
        subprocess.run(
            ["git", "-C", str(taxonomy), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        == head
    )
    assert not (params.output / "work").exists()


def test_missing_base_branch_is_named(tmp_path: Path) -> None:
    from ilab_gitops.steps.runtime import StepError

    taxonomy = make_taxonomy(tmp_path)
    with pytest.raises(
        StepError,
        match=r"taxonomy has no branch 'develop'.*\['ilab-gitops-"
        r"candidate', 'main'\]",
    ):
        final_eval.prepare_taxonomy(taxonomy, tmp_path / "work", "develop")
