"""Results folders for the report tests: a finished run and one that failed in phase 2.

Deterministic: the loss curves are a formula of the step, the times are fixed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ilab_gitops.manifests.model import STEP_IDS
from ilab_gitops.results.model import CheckpointScore, MtBenchResult, QnaFileResult, RunResults
from tests.support.results_data import make_results, qna_file

ROOT = Path(__file__).resolve().parents[2]
RUN = "granite-20261124"
SKILLS = "compositional_skills"
SPEC = ROOT / "spec" / "examples" / "production.yaml"
FINISH_TIMES = (
    "2026-11-24T08:05:00Z",
    "2026-11-24T14:40:00Z",
    "2026-11-25T02:10:00Z",
    "2026-11-25T04:30:00Z",
    "2026-11-25T05:15:00Z",
    "2026-11-25T05:40:00Z",
    "2026-11-25T05:52:00Z",
)


def loss_lines(steps: int, start: float, floor: float, epoch_steps: int, total: int) -> list[str]:
    """instructlab-training's metrics lines: the hyper-parameter line, then one per step."""
    lines = [json.dumps({"hparams": True, "lr": 2e-5, "timestamp": "2026-11-24T08:06:00"})]
    for step in range(1, steps + 1):
        loss = floor + (start - floor) * math.exp(-step / (steps / 4)) + 0.04 * math.sin(step)
        entry = {
            "epoch": (step - 1) // epoch_steps,
            "step": step,
            "rank": 0,
            "overall_throughput": 21.5,
            "avg_loss": round(loss, 6),
            "samples_seen": min(step * 128, total * 7),
            "total_samples": total,
            "num_epoch_steps": epoch_steps,
            "timestamp": f"2026-11-24T09:{step // 60 % 60:02d}:{step % 60:02d}",
        }
        lines.append(json.dumps(entry))
    return lines


def marker(step: str, finished: str, run: str = RUN) -> dict[str, object]:
    return {
        "schemaVersion": "1",
        "run": run,
        "step": step,
        "stepName": f"{run}-{step}-0a1b2c3d",
        "finishedAt": finished,
        "files": {},
        "details": {},
    }


def finished_results(run: str = RUN) -> RunResults:
    base = make_results(
        run,
        prs=(1412, 1420, 1433),
        files=[
            qna_file(f"{SKILLS}/grounded/linguistics/inclusion/qna.yaml", base=5.2, candidate=6.9),
            qna_file(f"{SKILLS}/writing/freeform/haiku/qna.yaml", base=6.1, candidate=6.0),
            qna_file("knowledge/science/astronomy/exoplanets/qna.yaml", base=4.0, candidate=7.3),
        ],
        finished=FINISH_TIMES[-1],
        mt_branch=(5.6, 6.7),
        mmlu_branch=(0.52, 0.61),
        best=7.12,
    )  # fmt: skip
    checkpoints = [
        CheckpointScore(checkpoint=f"samples_{n}", samples=n, score=s)
        for n, s in ((38400, 6.41), (76800, 6.88), (115200, 7.12), (153600, 7.05))
    ]
    return base.model_copy(
        update={
            "candidateCheckpoint": "samples_115200",
            "mtBench": MtBenchResult(
                bestCheckpoint="samples_115200", bestScore=7.12, checkpoints=checkpoints
            ),
        }
    )


def write_finished(folder: Path, run: str = RUN) -> Path:
    """A complete results folder of a finished run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(finished_results(run).model_dump_json(indent=2) + "\n")
    (folder / "spec.yaml").write_bytes(SPEC.read_bytes())
    metrics = folder / "metrics"
    metrics.mkdir()
    (metrics / "train-phase-1.jsonl").write_text(
        "\n".join(loss_lines(400, 2.4, 0.9, 57, 7300)) + "\n"
    )
    (metrics / "train-phase-2.jsonl").write_text(
        "\n".join(loss_lines(300, 1.6, 0.5, 30, 3840)) + "\n"
    )
    markers = folder / "markers"
    markers.mkdir()
    for step, finished in zip(STEP_IDS, FINISH_TIMES, strict=True):
        (markers / f"{step}.json").write_text(json.dumps(marker(step, finished, run)))
    return folder


def write_failed_in_phase_2(folder: Path, run: str = RUN) -> Path:
    """What a run that failed in phase 2 leaves: phase 1 done, phase 2's metrics cut short."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.yaml").write_bytes(SPEC.read_bytes())
    metrics = folder / "metrics"
    metrics.mkdir()
    (metrics / "train-phase-1.jsonl").write_text(
        "\n".join(loss_lines(400, 2.4, 0.9, 57, 7300)) + "\n"
    )
    # The pod died mid-write: the last line is cut.
    cut = "\n".join(loss_lines(120, 1.6, 0.5, 30, 3840)) + '\n{"epoch": 3, "step": 12'
    (metrics / "train-phase-2.jsonl").write_text(cut)
    markers = folder / "markers"
    markers.mkdir()
    for step, finished in zip(STEP_IDS[:2], FINISH_TIMES[:2], strict=True):
        (markers / f"{step}.json").write_text(json.dumps(marker(step, finished, run)))
    return folder


def hostile_qna(text: str) -> QnaFileResult:
    return qna_file(
        f"compositional_skills/{text}/qna.yaml", text=text.replace("{", "{{").replace("}", "}}")
    )
