"""final_eval: candidate vs base on the taxonomy's own questions (MT-Bench-Branch, MMLU-Branch).

MT-Bench-Branch asks each model the seed questions of its taxonomy branch: the candidate
the run's taxonomy commit, the base model the base branch (as `ilab model evaluate` does),
and the judge scores both. Results are kept per qna.yaml file, the unit a taxonomy PR
changes. MMLU-Branch runs lm-eval over the multiple-choice tasks SDG wrote to
`data/node_datasets_*`; a run without knowledge has none and reports no MMLU-Branch.
SDG names each task after its knowledge leaf (`knowledge/a/b/qna.yaml` -> `knowledge_a_b`),
which is how task scores go back to qna.yaml files, and writes the absolute path its data
had on the SDG machine into the task: the tasks are staged with that path pointed at the
copy that came in the SDG tarball.

The taxonomy is copied to a scratch folder first: the evaluator checks out branches, and the
prepare step's output must stay as it was.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import shutil
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

from ilab_gitops.results.model import BranchScores, QnaFileResult, QuestionScore
from ilab_gitops.steps import gitsafe
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
    """Copy the taxonomy and put HEAD on a named branch; make sure the base branch exists.

    The taxonomy comes from the SDG tarball: untrusted. The copy's `.git` is stripped of
    hooks and config, and every git process of this step (ours and instructlab-eval's) runs
    with the hardened environment of `gitsafe`.
    """
    import git

    if not (source / ".git").exists():
        raise StepError(f"{source} is not a git checkout: MT-Bench-Branch compares branches")
    target = work / "taxonomy"
    shutil.copytree(source, target, symlinks=True)
    gitsafe.sanitize_checkout(target)
    with gitsafe.hardened_environment(target), _git_errors(source):
        repo = git.Repo(target)
        repo.git.checkout("-B", CANDIDATE_BRANCH)
        local = {head.name for head in repo.heads}
        if base_branch not in local:
            remote = f"origin/{base_branch}"
            # From the refs themselves: the sanitized config names no remotes.
            remote_refs = {ref.path.removeprefix("refs/remotes/") for ref in repo.refs}
            if remote not in remote_refs:
                raise StepError(
                    f"taxonomy has no branch {base_branch!r} "
                    f"(evaluation.final.taxonomyBaseBranch); branches: {sorted(local)}"
                )
            repo.git.branch("--end-of-options", base_branch, f"refs/remotes/{remote}")
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


def qna_results(
    candidate: list[dict[str, Any]],
    base: list[dict[str, Any]],
    mmlu: dict[str, BranchScores] | None = None,
) -> list[QnaFileResult]:
    """Per qna.yaml: mean score of each model and the question-level scores side by side.

    `mmlu` holds MMLU-Branch scores by qna.yaml path (knowledge files, which MT-Bench-Branch
    does not ask about).
    """
    mmlu = mmlu or {}
    by_file: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for label, pairs in (("candidate", candidate), ("base", base)):
        for pair in pairs:
            qid = str(pair["question_id"])
            entry = by_file[str(pair["qna_file"])].setdefault(
                qid, {"question": _question_text(pair["question"])}
            )
            entry[label] = float(pair["score"])
    results = []
    for path in sorted(by_file.keys() | mmlu.keys()):
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
        file_mmlu = mmlu.get(path)
        results.append(
            QnaFileResult(
                path=path,
                mtBenchBranchBase=statistics.fmean(base_scores) if base_scores else None,
                mtBenchBranchCandidate=statistics.fmean(cand_scores) if cand_scores else None,
                mmluBranchBase=file_mmlu.base if file_mmlu else None,
                mmluBranchCandidate=file_mmlu.candidate if file_mmlu else None,
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


def _map_paths(value: Any, local: Callable[[Any], str]) -> Any:
    """`data_files` is a path, a list of them, or a split -> path(s) mapping."""
    if isinstance(value, dict):
        return {key: _map_paths(item, local) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_paths(item, local) for item in value]
    return local(value)


@dataclass(frozen=True)
class StagedTasks:
    """SDG's MMLU-Branch tasks, ready for lm-eval in `folder`; `skipped` says why others aren't."""

    folder: Path
    tasks: list[str]
    skipped: dict[str, str]


def _count_rows(files: Any) -> int:
    if isinstance(files, dict):
        return sum(_count_rows(f) for f in files.values())
    if isinstance(files, list):
        return sum(_count_rows(f) for f in files)
    with Path(str(files)).open("rb") as stream:
        return sum(1 for line in stream if line.strip())


def stage_mmlu_tasks(source: Path, work: Path, *, few_shots: int) -> StagedTasks:
    """Copy SDG's task folder; point each task's data files at the copies beside it.

    SDG writes `dataset_kwargs.data_files` as the path the data had where SDG ran, which
    does not exist in this pod. Tasks from SDG releases that grouped them with `group:
    mmlu_pr` get `tag: mmlu_pr`, which is what lm-eval >= 0.4.4 reads for a task's label.
    A task lm-eval cannot run is left out and named in `skipped`: one with no questions
    (SDG filters out malformed ones, sometimes all of a leaf's), and one with no more
    questions than `few_shots`, since the few-shot examples are drawn from the other
    questions of the same task.
    """
    # PyYAML is in the eval image (lm-eval reads tasks with it) but has no type stubs in
    # the steps venv: imported by name, it types as Any in both venvs.
    yaml: Any = importlib.import_module("yaml")
    target = work / "mmlu_tasks"
    shutil.copytree(source, target, symlinks=False)
    tasks: list[str] = []
    skipped: dict[str, str] = {}
    for task_file in sorted(target.glob("*.yaml")):
        try:
            task = yaml.safe_load(task_file.read_text("utf-8"))
        except yaml.YAMLError:
            continue  # not one of SDG's plain task files: lm-eval reads it as it is
        if not isinstance(task, dict) or "task" not in task:
            continue

        def local(original: Any, name: str = task_file.name) -> str:
            data = target / PurePath(str(original)).name
            if not data.is_file():
                raise StepError(
                    f"MMLU-Branch task {name} reads {original}, and the SDG data has no "
                    f"{data.name} next to it in {source.name}/"
                )
            return str(data)

        name = str(task["task"])
        kwargs = task.get("dataset_kwargs")
        if isinstance(kwargs, dict) and kwargs.get("data_files") is not None:
            kwargs["data_files"] = _map_paths(kwargs["data_files"], local)
            # SDG writes JSON lines (`dataset_path: json`): one question a line.
            rows = _count_rows(kwargs["data_files"]) if task.get("dataset_path") == "json" else -1
            if 0 <= rows <= few_shots:
                skipped[name] = (
                    f"{rows} questions; fewShots={few_shots} needs at least {few_shots + 1}"
                    if rows
                    else "no questions"
                )
                log.warning("MMLU-Branch task %s left out: %s", name, skipped[name])
                task_file.unlink()
                continue
        if task.get("group") in MMLU_TASKS and "tag" not in task:
            task["tag"] = task.pop("group")
        task_file.write_text(yaml.safe_dump(task, sort_keys=False), "utf-8")
        tasks.append(name)
    return StagedTasks(target, tasks, skipped)


@contextlib.contextmanager
def _git_errors(taxonomy: Path) -> Iterator[None]:
    """The taxonomy comes from an untrusted tarball: a repository git cannot use (missing
    objects, a broken HEAD), or refs GitPython cannot parse (a packed-refs header it does not
    know, a ref name that is not UTF-8: TypeError, ValueError), is a clean error naming it,
    not an internal one. Git's words echo the tarball's bytes, so they are quoted."""
    import git

    try:
        yield
    except (git.exc.GitError, TypeError, ValueError) as err:
        lines = str(getattr(err, "stderr", "") or err).strip().splitlines()
        reason = lines[-1] if lines else type(err).__name__
        raise StepError(f"taxonomy {taxonomy}: git cannot use it ({reason!r})") from None


def mmlu_task_files(taxonomy: Path, branch: str) -> dict[str, str]:
    """MMLU-Branch task name -> qna.yaml path, for the knowledge files on `branch`.

    SDG names a leaf's task after its taxonomy path with `->` replaced by `_`
    (`knowledge/science/plants/qna.yaml` -> `knowledge_science_plants`). Two folders that
    give the same name cannot be told apart, so neither gets the task's score.
    """
    import git

    names: dict[str, list[str]] = defaultdict(list)
    with gitsafe.hardened_environment(taxonomy), _git_errors(taxonomy):
        repo = git.Repo(taxonomy)
        listed = repo.git.ls_tree(
            "-r", "--name-only", "--end-of-options", branch, "--", "knowledge"
        )
    for path in listed.splitlines():
        rel = PurePath(path)
        if rel.name == "qna.yaml":
            names["_".join(rel.parent.parts)].append(rel.as_posix())
    for name, paths in sorted(names.items()):
        if len(paths) > 1:
            log.warning("MMLU-Branch task %s could be any of %s: not attributed", name, paths)
    return {name: paths[0] for name, paths in names.items() if len(paths) == 1}


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


def mmlu_by_qna_file(
    details: dict[str, Any], task_files: dict[str, str]
) -> dict[str, BranchScores]:
    """Per qna.yaml MMLU-Branch scores from the per-task results of both models."""
    results: dict[str, BranchScores] = {}
    for task in sorted(details["candidate"]["tasks"].keys() & details["base"]["tasks"].keys()):
        path = task_files.get(task)
        if path is None:
            log.warning("MMLU-Branch task %s matches no knowledge qna.yaml: not attributed", task)
            continue
        results[path] = BranchScores(
            base=float(details["base"]["tasks"][task]["score"]),
            candidate=float(details["candidate"]["tasks"][task]["score"]),
        )
    return results


def evaluate(params: FinalEvalParams, *, serve: Serve = serve_vllm) -> None:
    judge = judge_from_env()
    mt_file = Path(params.mtBenchPath) / MT_BENCH_FILE
    try:
        mt = MtBenchOutput.model_validate_json(mt_file.read_bytes())
    except FileNotFoundError:
        raise StepError(f"{mt_file} not found: did the MT-Bench step finish?") from None
    candidate, base = Path(mt.candidatePath), Path(params.baseModelPath)
    # The hardened git environment covers the git calls inside instructlab-eval too.
    with (
        staged_output(params.output) as stage,
        gitsafe.hardened_environment(stage / "work" / "taxonomy"),
    ):
        work = stage / "work"
        taxonomy = prepare_taxonomy(Path(params.taxonomyPath), work, params.taxonomyBaseBranch)
        # Staged first: a task whose data is missing fails the step before any model runs.
        staged: StagedTasks | None = None
        tasks_dir = mmlu_tasks_dir(Path(params.sdgDataPath))
        if tasks_dir is None:
            log.warning("no node_datasets_*/ task files in the SDG data: skipping MMLU-Branch")
        else:
            staged = stage_mmlu_tasks(tasks_dir, work, few_shots=params.fewShots)
            if not staged.tasks:
                log.warning("no MMLU-Branch task can run (%s): skipping it", staged.skipped)
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
        mmlu_files: dict[str, BranchScores] = {}
        if staged is not None:
            task_files = mmlu_task_files(taxonomy, CANDIDATE_BRANCH)
            mmlu_details = {}
            if staged.tasks:
                mmlu, mmlu_details = mmlu_branch(staged.folder, candidate, base, params, serve)
                mmlu_files = mmlu_by_qna_file(mmlu_details, task_files)
            mmlu_details["skipped"] = staged.skipped
            mmlu_details["qnaFiles"] = {
                task: task_files.get(task) for task in sorted([*staged.tasks, *staged.skipped])
            }
        shutil.rmtree(work, ignore_errors=True)
        output = FinalEvalOutput(
            candidatePath=str(candidate),
            baseModelPath=str(base),
            taxonomyBaseBranch=params.taxonomyBaseBranch,
            mtBenchBranch=BranchScores(base=base_score, candidate=cand_score),
            mmluBranch=mmlu,
            qnaFiles=qna_results(cand_pairs, base_pairs, mmlu_files),
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
