"""mt_bench: MT-Bench on every phase-2 checkpoint; the best one becomes the candidate.

For each `samples_N` checkpoint: serve it, generate answers (instructlab-eval), stop the
server, have the judge score the answers. The best score wins; ties go to the checkpoint
that saw more samples, so the choice is deterministic. Writes `mt_bench.json`
(`outputs.MtBenchOutput`) plus one `mt_bench_<checkpoint>.json` with each checkpoint's
question-level scores.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ilab_gitops.results.model import CheckpointScore, MtBenchResult
from ilab_gitops.steps.checkpoints import Checkpoint, hf_checkpoints
from ilab_gitops.steps.digests import tree_sha256
from ilab_gitops.steps.judge import Judge, http_client, judge_from_env
from ilab_gitops.steps.markers import done_marker, staged_output, write_marker
from ilab_gitops.steps.outputs import MT_BENCH_FILE, MtBenchOutput
from ilab_gitops.steps.progress import Reporter, evaluation_progress
from ilab_gitops.steps.progress_status import reporter_from_env
from ilab_gitops.steps.runtime import StepError, StepParams, run_step
from ilab_gitops.steps.serving import Serve, gpu_count, serve_vllm

log = logging.getLogger(__name__)

MaxWorkers = int | Literal["auto"]


class MtBenchParams(StepParams):
    checkpointsPath: str
    maxWorkers: MaxWorkers
    mergeSystemUserMessage: bool
    judgeCaBundle: str | None = None


def pick_best(scores: Sequence[CheckpointScore]) -> CheckpointScore:
    """Highest score; among equal scores the highest sample count."""
    if not scores:
        raise StepError("no checkpoint was scored")
    return max(scores, key=lambda s: (s.score, s.samples))


def clean_score(value: Any, what: str) -> float:
    score = float(value)
    if math.isnan(score) or score < 0:
        raise StepError(f"{what}: the judge produced no usable score ({value!r})")
    return score


def score_checkpoint(
    checkpoint: Checkpoint, params: MtBenchParams, judge: Judge, work: Path, serve: Serve
) -> tuple[CheckpointScore, dict[str, Any]]:
    from instructlab.eval.mt_bench import MTBenchEvaluator

    evaluator = MTBenchEvaluator(
        model_name=checkpoint.name,
        judge_model_name=judge.model,
        output_dir=str(work),
        merge_system_user_message=params.mergeSystemUserMessage,
    )
    gpus = gpu_count() or None
    with serve(checkpoint.path, checkpoint.name) as url:
        evaluator.gen_answers(url, max_workers=params.maxWorkers, serving_gpus=gpus)
    with http_client(params.judgeCaBundle) as client:
        overall, qa_pairs, turn_scores, error_rate = evaluator.judge_answers(
            judge.endpoint,
            api_key=judge.api_key,
            max_workers=params.maxWorkers,
            serving_gpus=gpus,
            http_client=client,
        )
    score = CheckpointScore(
        checkpoint=checkpoint.name,
        samples=checkpoint.samples,
        score=clean_score(overall, checkpoint.name),
        errorRate=float(error_rate),
    )
    detail = {
        "checkpoint": checkpoint.name,
        "samples": checkpoint.samples,
        "overallScore": score.score,
        "turnScores": [t if isinstance(t, str) else float(t) for t in turn_scores],
        "errorRate": score.errorRate,
        "qaPairs": qa_pairs,
    }
    log.info("%s: MT-Bench %.3f (error rate %.2f)", checkpoint.name, score.score, score.errorRate)
    return score, detail


def _progress(
    params: MtBenchParams,
    scores: list[CheckpointScore],
    total: int,
    started: float,
    reporter: Reporter | None,
) -> None:
    best = pick_best(scores) if scores else None
    evaluation_progress(
        params.output,
        params.step,
        done=len(scores),
        total=total,
        elapsed=time.monotonic() - started,
        best=(best.checkpoint, best.score) if best else None,
        reporter=reporter,
    )


def evaluate(params: MtBenchParams, *, serve: Serve = serve_vllm) -> None:
    judge = judge_from_env()
    checkpoints = hf_checkpoints(Path(params.checkpointsPath))
    if not checkpoints:
        raise StepError(f"no samples_N checkpoints under {params.checkpointsPath}")
    with staged_output(params.output) as stage:
        work = stage / "work"
        scores: list[CheckpointScore] = []
        started = time.monotonic()
        reporter = reporter_from_env(params.stepName)
        for checkpoint in checkpoints:
            _progress(params, scores, len(checkpoints), started, reporter)
            score, detail = score_checkpoint(checkpoint, params, judge, work, serve)
            scores.append(score)
            (stage / f"mt_bench_{checkpoint.name}.json").write_text(
                json.dumps(detail, indent=2, default=str) + "\n", "utf-8"
            )
        shutil.rmtree(work, ignore_errors=True)
        _progress(params, scores, len(checkpoints), started, reporter)
        best = pick_best(scores)
        output = MtBenchOutput(
            result=MtBenchResult(
                bestCheckpoint=best.checkpoint,
                bestScore=best.score,
                checkpoints=sorted(scores, key=lambda s: s.samples),
            ),
            candidatePath=str(next(c.path for c in checkpoints if c.name == best.checkpoint)),
            judgeModel=judge.model,
        )
        (stage / MT_BENCH_FILE).write_text(output.model_dump_json(indent=2) + "\n", "utf-8")
        write_marker(
            stage,
            done_marker(
                params,
                files=tree_sha256(stage),
                details={
                    "best": best.checkpoint,
                    "score": best.score,
                    "checkpoints": len(checkpoints),
                },
            ),
        )


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, MtBenchParams, evaluate, description=__doc__ or "mt_bench")


if __name__ == "__main__":
    raise SystemExit(main())
