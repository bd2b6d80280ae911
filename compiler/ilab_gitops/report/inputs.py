"""Read a run's results folder for the report, saying what is missing instead of failing.

The folder (local, or what the publish step gathers from the workspace) may hold:

    results.json                  the publish step's results (absent when the run stopped early)
    spec.yaml                     the PipelineRun as committed
    metrics/train-phase-1.jsonl   instructlab-training's training_params_and_metrics_global0.jsonl
    metrics/train-phase-2.jsonl
    mt_bench.json, final_eval.json  the evaluation steps' outputs (used without results.json)
    markers/<step>.json           each finished step's .done.json

Every file is optional; a present file that cannot be read is an error (`ReportInputError`,
naming the file, line, column and field where known). Sizes are capped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ilab_gitops.manifests.model import STEP_IDS
from ilab_gitops.results.model import BranchScores, MtBenchResult, QnaFileResult, RunResults
from ilab_gitops.steps.markers import Marker
from ilab_gitops.steps.outputs import FinalEvalOutput, MtBenchOutput

RESULTS_FILE = "results.json"
SPEC_FILE = "spec.yaml"
METRICS_DIR = "metrics"
MARKERS_DIR = "markers"
PHASES = ("train-phase-1", "train-phase-2")
#: instructlab-training 0.16.2 writes rank 0's metrics here, in its ckpt_output_dir.
TRAINING_METRICS_FILE = "training_params_and_metrics_global0.jsonl"

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_SPEC_BYTES = 256 * 1024
MAX_METRICS_BYTES = 256 * 1024 * 1024
MAX_METRIC_POINTS = 1_000_000


class ReportInputError(Exception):
    """A file in the results folder is unreadable; the message names where and why."""


@dataclass(frozen=True)
class LossPoint:
    step: int
    loss: float
    epoch: int | None
    samples: int | None


@dataclass
class PhaseMetrics:
    """One training phase's loss curve, as instructlab-training logged it."""

    points: list[LossPoint] = field(default_factory=list)
    skipped: int = 0  # lines that were not metrics (unreadable, or a non-finite loss)


@dataclass
class ReportData:
    """Everything the report shows; None (or empty) where the run left nothing."""

    run: str
    results: RunResults | None = None
    spec_text: str | None = None
    taxonomy_repo: str | None = None
    pull_requests: list[int] = field(default_factory=list)
    metrics: dict[str, PhaseMetrics] = field(default_factory=dict)
    markers: dict[str, Marker] = field(default_factory=dict)
    mt_bench: MtBenchResult | None = None
    mt_bench_branch: BranchScores | None = None
    mmlu_branch: BranchScores | None = None
    qna_files: list[QnaFileResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is missing, in plain words

    @property
    def finished(self) -> bool:
        return self.results is not None


def _read_capped(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ReportInputError(f"{path}: not a regular file")
        if size > limit:
            raise ReportInputError(f"{path}:1:1: file is {size} bytes; the limit is {limit}")
        return path.read_bytes()
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def _load_model(path: Path, model: type[M]) -> M:
    raw = _read_capped(path, MAX_JSON_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportInputError(f"{path}:1:1: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ReportInputError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ReportInputError(
            f"{path}:1:1: {_field(first['loc'])}: {first['msg']}{more}"
        ) from None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_metrics(path: Path) -> PhaseMetrics:
    """The loss per step from instructlab-training's JSON lines (the last entry per step wins:
    a resumed phase logs its steps again). Lines without `step` and `avg_loss` (the
    hyper-parameter line) are not metrics; unreadable or non-finite ones are counted."""
    size = path.stat().st_size
    if size > MAX_METRICS_BYTES:
        raise ReportInputError(
            f"{path}:1:1: file is {size} bytes; the limit is {MAX_METRICS_BYTES}"
        )
    by_step: dict[int, LossPoint] = {}
    skipped = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                skipped += raw.strip() != b""
                continue
            if not isinstance(entry, dict) or "step" not in entry or "avg_loss" not in entry:
                continue
            step, loss = entry["step"], entry["avg_loss"]
            if _int_or_none(step) is None or not isinstance(loss, int | float):
                skipped += 1
                continue
            if not math.isfinite(loss):
                skipped += 1
                continue
            if step not in by_step and len(by_step) >= MAX_METRIC_POINTS:
                raise ReportInputError(f"{path}: more than {MAX_METRIC_POINTS} steps")
            by_step[step] = LossPoint(
                step=step,
                loss=float(loss),
                epoch=_int_or_none(entry.get("epoch")),
                samples=_int_or_none(entry.get("samples_seen")),
            )
    return PhaseMetrics(points=[by_step[s] for s in sorted(by_step)], skipped=skipped)


def _read_spec(data: ReportData, path: Path) -> None:
    from ilab_gitops.load.sources import LoadError, parse_yaml

    raw = _read_capped(path, MAX_SPEC_BYTES)
    data.spec_text = raw.decode("utf-8", errors="replace")
    try:
        doc = parse_yaml(raw, str(path))
    except LoadError as exc:
        data.notes.append(f"The spec could not be parsed: {exc}")
        return
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    taxonomy = spec.get("taxonomy") if isinstance(spec, dict) else None
    if isinstance(taxonomy, dict):
        repo = taxonomy.get("repoUrl")
        prs = taxonomy.get("pullRequests")
        data.taxonomy_repo = repo if isinstance(repo, str) else None
        if isinstance(prs, list):
            data.pull_requests = sorted({p for p in prs if _int_or_none(p) is not None})


def _read_markers(data: ReportData, folder: Path) -> None:
    for path in sorted(folder.glob("*.json")):
        marker = _load_model(path, Marker)
        if marker.run != data.run:
            raise ReportInputError(f"{path}:1:1: run: is {marker.run!r}, expected {data.run!r}")
        data.markers[marker.step] = marker


def load(folder: Path, run: str, spec: Path | None = None) -> ReportData:
    """Read the results folder of `run`; raises ReportInputError for unreadable files."""
    if not folder.is_dir():
        raise ReportInputError(f"{folder}: not a directory")
    data = ReportData(run=run)
    if (folder / RESULTS_FILE).exists():
        results = _load_model(folder / RESULTS_FILE, RunResults)
        if results.run != run:
            raise ReportInputError(
                f"{folder / RESULTS_FILE}:1:1: run: is {results.run!r}, expected {run!r}"
            )
        data.results = results
        data.mt_bench = results.mtBench
        data.mt_bench_branch = results.mtBenchBranch
        data.mmlu_branch = results.mmluBranch
        data.qna_files = list(results.qnaFiles)
        data.taxonomy_repo = results.taxonomy.repoUrl
        data.pull_requests = list(results.taxonomy.pullRequests)
    spec_path = spec if spec is not None else folder / SPEC_FILE
    if spec_path.exists():
        _read_spec(data, spec_path)
        if data.results is not None:
            data.taxonomy_repo = data.results.taxonomy.repoUrl
            data.pull_requests = list(data.results.taxonomy.pullRequests)
    else:
        data.notes.append("The spec is not in the results folder.")
    if (folder / MARKERS_DIR).is_dir():
        _read_markers(data, folder / MARKERS_DIR)
    for phase in PHASES:
        path = folder / METRICS_DIR / f"{phase}.jsonl"
        if path.is_file():
            data.metrics[phase] = read_metrics(path)
            if data.metrics[phase].skipped:
                data.notes.append(
                    f"{phase}: {data.metrics[phase].skipped} metrics line(s) were unreadable "
                    "or had a non-finite loss and are left out."
                )
        else:
            data.notes.append(f"No training metrics for {phase}.")
    if data.results is None:
        data.notes.append("The run has no results.json: it has not finished (or failed).")
        if (folder / "mt_bench.json").exists():
            data.mt_bench = _load_model(folder / "mt_bench.json", MtBenchOutput).result
        if (folder / "final_eval.json").exists():
            final = _load_model(folder / "final_eval.json", FinalEvalOutput)
            data.mt_bench_branch = final.mtBenchBranch
            data.mmlu_branch = final.mmluBranch
            data.qna_files = sorted(final.qnaFiles, key=lambda q: q.path)
    if data.mt_bench is None:
        data.notes.append("No MT-Bench scores: the eval-mt-bench step has not finished.")
    if data.mt_bench_branch is None:
        data.notes.append("No MT-Bench-Branch / MMLU-Branch scores: eval-final has not finished.")
    if data.results is not None and "publish" not in data.markers:
        # results.json is the publish step's output: its time is the step's finish.
        data.markers["publish"] = Marker(
            run=run,
            step="publish",
            stepName="publish",
            finishedAt=data.results.finishedAt,
            files={},
        )
    missing = [step for step in STEP_IDS if step not in data.markers]
    if missing:
        data.notes.append(f"Steps without a done marker: {', '.join(missing)}.")
    return data
