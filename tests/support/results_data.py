"""Build `RunResults` for tests."""

from __future__ import annotations

from collections.abc import Sequence

from ilab_gitops.results.model import (
    BranchScores,
    CheckpointScore,
    ModelLocation,
    MtBenchResult,
    QnaFileResult,
    QuestionScore,
    RunResults,
    TaxonomyInfo,
)


def qna_path(pr: int, index: int = 0) -> str:
    return f"compositional_skills/pr{pr}/topic{index}/qna.yaml"


def qna_file(
    path: str,
    questions: int = 2,
    *,
    text: str = "What is {n}?",
    base: float = 4.0,
    candidate: float = 7.0,
) -> QnaFileResult:
    return QnaFileResult(
        path=path,
        mtBenchBranchBase=base,
        mtBenchBranchCandidate=candidate,
        mmluBranchBase=0.4,
        mmluBranchCandidate=0.5,
        questions=[
            QuestionScore(
                questionId=str(n), question=text.format(n=n), baseScore=3.0, candidateScore=8.0
            )
            for n in range(1, questions + 1)
        ],
    )


def make_results(
    run: str = "granite-a",
    prs: Sequence[int] = (1, 2),
    *,
    files: Sequence[QnaFileResult] | None = None,
    finished: str = "2026-11-24T10:00:00Z",
    mt_branch: tuple[float, float] = (5.0, 6.0),
    mmlu_branch: tuple[float, float] = (0.5, 0.6),
    best: float = 7.1,
    cluster: str = "kind",
    namespace: str = "ilab-dev",
    taxonomy: str = "example-org/taxonomy",
) -> RunResults:
    qna = list(files) if files is not None else [qna_file(qna_path(pr)) for pr in prs]
    return RunResults(
        run=run,
        specSha256="0" * 64,
        cluster=cluster,
        namespace=namespace,
        baseModel="ibm-granite/granite-7b-base@0c2f2d6a",
        candidateCheckpoint="samples_123456",
        taxonomy=TaxonomyInfo(
            repoUrl=f"https://github.com/{taxonomy}",
            commit="9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
            baseBranch="main",
            pullRequests=list(prs),
        ),
        mtBench=MtBenchResult(
            bestCheckpoint="samples_123456",
            bestScore=best,
            checkpoints=[CheckpointScore(checkpoint="samples_123456", samples=123456, score=best)],
        ),
        mtBenchBranch=BranchScores(base=mt_branch[0], candidate=mt_branch[1]),
        mmluBranch=BranchScores(base=mmlu_branch[0], candidate=mmlu_branch[1]),
        qnaFiles=sorted(qna, key=lambda q: q.path),
        model=ModelLocation(
            s3Uri=f"s3://models/ilab-runs/{cluster}/{namespace}/{run}/model",
            huggingFaceRepo="example-org/granite-7b-lab",
            huggingFaceRevision=f"release-{run}",
            huggingFaceUrl=f"https://huggingface.co/example-org/granite-7b-lab/tree/release-{run}",
        ),
        finishedAt=finished,
    )
