"""`results.json`: what a finished run reports, for the GitHub workflows and the model card.

Written by the publish step next to the model in object storage; read by
`ilab-gitops results sync`. The schema is versioned (`schemaVersion`) and published as
spec/schema/results.schema.json. Scores map back to taxonomy PRs through `qnaFiles`: each
entry is one `qna.yaml` path, the unit a taxonomy PR changes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Results(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Score = Annotated[float, Field(ge=0)]


class CheckpointScore(_Results):
    """MT-Bench score of one phase-2 checkpoint."""

    checkpoint: str = Field(description="Checkpoint folder name, e.g. samples_123456.")
    samples: int = Field(ge=0, description="Samples seen when the checkpoint was saved.")
    score: Score = Field(description="MT-Bench overall score (0-10).")
    errorRate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.0, description="Fraction of judgments that failed to parse."
    )


class MtBenchResult(_Results):
    """MT-Bench over all phase-2 checkpoints; the best one is the candidate."""

    bestCheckpoint: str
    bestScore: Score
    checkpoints: list[CheckpointScore] = Field(description="Sorted by samples, ascending.")


class QuestionScore(_Results):
    """One taxonomy question judged for base and candidate (MT-Bench-Branch)."""

    questionId: str = Field(
        description="instructlab-eval's question id (a 128-bit md5 integer, kept as a string "
        "so JSON readers do not lose precision)."
    )
    question: str
    baseScore: Score | None = None
    candidateScore: Score | None = None


class QnaFileResult(_Results):
    """Scores for one qna.yaml file: the unit that maps results to taxonomy PRs."""

    path: str = Field(description="Path of the qna.yaml inside the taxonomy repo.")
    mtBenchBranchBase: Score | None = None
    mtBenchBranchCandidate: Score | None = None
    mmluBranchBase: Score | None = None
    mmluBranchCandidate: Score | None = None
    questions: list[QuestionScore] = Field(default_factory=list)


class BranchScores(_Results):
    """Overall score of base and candidate on one branch benchmark."""

    base: Score
    candidate: Score

    @property
    def delta(self) -> float:
        return self.candidate - self.base


class ModelLocation(_Results):
    """Where the candidate model ended up."""

    s3Uri: str
    huggingFaceRepo: str | None = None
    huggingFaceRevision: str | None = None
    huggingFaceUrl: str | None = None


class TaxonomyInfo(_Results):
    repoUrl: str
    commit: str
    baseBranch: str
    pullRequests: list[int]


class RunResults(_Results):
    """The versioned contents of results.json."""

    schemaVersion: Literal["1"] = Field(
        default="1", description="Bumped on any incompatible change to this file's shape."
    )
    run: str
    specSha256: str
    cluster: str
    namespace: str
    baseModel: str = Field(description="Human-readable base model id (repo@revision or URI).")
    candidateCheckpoint: str
    taxonomy: TaxonomyInfo
    mtBench: MtBenchResult
    mtBenchBranch: BranchScores
    mmluBranch: BranchScores | None = Field(
        default=None, description="Absent when the SDG data has no knowledge datasets."
    )
    qnaFiles: list[QnaFileResult] = Field(description="Sorted by path.")
    model: ModelLocation
    finishedAt: str = Field(description="RFC 3339 UTC time the publish step wrote the file.")
