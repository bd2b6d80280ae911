"""Evaluation outputs as mt_bench and final_eval leave them, for the upload/publish tests."""

from __future__ import annotations

from pathlib import Path

from ilab_gitops.results.model import BranchScores, CheckpointScore, MtBenchResult, QnaFileResult
from ilab_gitops.steps.outputs import (
    FINAL_EVAL_FILE,
    MT_BENCH_FILE,
    FinalEvalOutput,
    MtBenchOutput,
)


def write_eval_outputs(root: Path, candidate: Path, base: Path) -> tuple[Path, Path]:
    mt_dir, final_dir = root / "mt", root / "final"
    mt_dir.mkdir(parents=True)
    final_dir.mkdir(parents=True)
    mt = MtBenchOutput(
        result=MtBenchResult(
            bestCheckpoint=candidate.name,
            bestScore=7.5,
            checkpoints=[
                CheckpointScore(checkpoint="samples_100", samples=100, score=6.0),
                CheckpointScore(checkpoint=candidate.name, samples=200, score=7.5),
            ],
        ),
        candidatePath=str(candidate),
        judgeModel="judge",
    )
    (mt_dir / MT_BENCH_FILE).write_text(mt.model_dump_json(indent=2))
    (mt_dir / "mt_bench_samples_200.json").write_text('{"score": 7.5}')
    final = FinalEvalOutput(
        candidatePath=str(candidate),
        baseModelPath=str(base),
        taxonomyBaseBranch="main",
        mtBenchBranch=BranchScores(base=5.0, candidate=6.5),
        mmluBranch=BranchScores(base=0.5, candidate=0.625),
        qnaFiles=[
            QnaFileResult(
                path="compositional_skills/writing/qna.yaml",
                mtBenchBranchBase=5.0,
                mtBenchBranchCandidate=6.5,
            )
        ],
    )
    (final_dir / FINAL_EVAL_FILE).write_text(final.model_dump_json(indent=2))
    return mt_dir, final_dir
