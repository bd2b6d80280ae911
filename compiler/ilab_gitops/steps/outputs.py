"""What the evaluation steps leave in their output folders for upload and publish.

Pure pydantic (no instructlab-eval import), so the publish image can read them. The score
types are those of `ilab_gitops.results.model`, so results.json is assembled, not re-derived.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ilab_gitops.results.model import BranchScores, MtBenchResult, QnaFileResult

MT_BENCH_FILE = "mt_bench.json"
FINAL_EVAL_FILE = "final_eval.json"
UPLOAD_FILE = "upload.json"
MANIFEST_FILE = "manifest.json"


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MtBenchOutput(_Output):
    result: MtBenchResult
    candidatePath: str
    judgeModel: str


class FinalEvalOutput(_Output):
    candidatePath: str
    baseModelPath: str
    taxonomyBaseBranch: str
    mtBenchBranch: BranchScores
    mmluBranch: BranchScores | None
    qnaFiles: list[QnaFileResult]


class ManifestEntry(_Output):
    sha256: str
    size: int


class Manifest(_Output):
    """Every uploaded object under the destination prefix, keyed by path below it."""

    schemaVersion: str = "1"
    files: dict[str, ManifestEntry]


class UploadOutput(_Output):
    bucket: str
    prefix: str
    s3Uri: str
    candidatePath: str
    modelKeys: list[str]
    mtBench: MtBenchOutput
    finalEval: FinalEvalOutput
