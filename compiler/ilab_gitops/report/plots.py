"""The run's plots as PNG bytes: the same data gives the same bytes.

matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), one font
bundled with matplotlib (DejaVu Sans), fixed size and DPI, no `Software` tag or time in the
PNG. Labels from untrusted data (taxonomy paths) are drawn as plain text: math parsing is
off, control characters are dropped and long labels are cut. A plot without data is a text
panel that says what is missing, never empty axes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ilab_gitops.report.inputs import PHASES, PhaseMetrics
from ilab_gitops.results.model import BranchScores, MtBenchResult, QnaFileResult

DPI = 100
BASE_COLOR = "#8c8c8c"
CANDIDATE_COLOR = "#1f5fa8"
PHASE_COLORS = {"train-phase-1": "#1f5fa8", "train-phase-2": "#b8561b"}
MAX_TASKS = 25
LABEL_CHARS = 48

_RC: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "text.parse_math": False,
    "text.usetex": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "svg.hashsalt": "ilab-gitops",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}


@dataclass(frozen=True)
class Plot:
    """One rendered plot: its file name, what it shows (alt text) and the PNG bytes."""

    name: str
    title: str
    alt: str
    png: bytes
    has_data: bool


def plain_label(text: str, limit: int = LABEL_CHARS) -> str:
    """Untrusted text as one short line: printable characters only, cut from the left
    (the end of a taxonomy path says the most)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    if len(flat) > limit:
        flat = "…" + flat[-(limit - 1) :]
    return flat


def task_label(path: str) -> str:
    return plain_label(path.removesuffix("/qna.yaml").removesuffix("qna.yaml") or path)


def _png(draw: object) -> bytes:
    """Run `draw(figure)` under the fixed settings and return the PNG bytes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert callable(draw)
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # A glyph missing from DejaVu (emoji in a path) is drawn as a box, not an error.
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
        fig = Figure(figsize=(9.0, 3.6), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _no_data(ax: object, message: str) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    ax.set_axis_off()
    ax.text(
        0.5, 0.5, message, ha="center", va="center", wrap=True, color="#555555",
        fontsize=10, transform=ax.transAxes,
        bbox={"boxstyle": "round,pad=0.8", "facecolor": "#f4f4f4", "edgecolor": "#cccccc"},
    )  # fmt: skip


def loss_plot(metrics: dict[str, PhaseMetrics]) -> Plot:
    """Training loss per step, one panel per phase."""
    have = {phase: bool(metrics.get(phase) and metrics[phase].points) for phase in PHASES}

    def draw(fig: object) -> None:
        from matplotlib.figure import Figure

        assert isinstance(fig, Figure)
        axes = fig.subplots(1, len(PHASES), squeeze=False)[0]
        for ax, phase in zip(axes, PHASES, strict=True):
            points = metrics[phase].points if have[phase] else []
            title = phase.replace("train-", "").replace("-", " ").capitalize()
            if not points:
                ax.set_title(title)
                _no_data(ax, f"No loss data for {phase}:\nthe step has not logged metrics.")
                continue
            ax.plot(
                [p.step for p in points],
                [p.loss for p in points],
                color=PHASE_COLORS[phase],
                linewidth=1.2,
            )
            ax.set_title(f"{title} ({len(points)} steps)")
            ax.set_xlabel("step")
            ax.set_ylabel("average loss")

    counts = ", ".join(
        f"{phase}: {len(metrics[phase].points) if have[phase] else 'no'} steps" for phase in PHASES
    )
    return Plot(
        name="loss.png",
        title="Training loss",
        alt=f"Training loss per step ({counts}).",
        png=_png(draw),
        has_data=any(have.values()),
    )


def mt_bench_plot(result: MtBenchResult | None) -> Plot:
    """MT-Bench score per phase-2 checkpoint, the chosen one marked."""
    points = sorted(result.checkpoints, key=lambda c: c.samples) if result else []

    def draw(fig: object) -> None:
        from matplotlib.figure import Figure

        assert isinstance(fig, Figure)
        ax = fig.subplots()
        ax.set_title("MT-Bench per phase-2 checkpoint")
        if result is None or not points:
            _no_data(ax, "No MT-Bench scores: the eval-mt-bench step has not finished.")
            return
        ax.plot(
            [c.samples for c in points],
            [c.score for c in points],
            marker="o",
            color=CANDIDATE_COLOR,
            linewidth=1.2,
        )
        best = [c for c in points if c.checkpoint == result.bestCheckpoint]
        if best:
            ax.plot(
                [best[0].samples],
                [best[0].score],
                marker="*",
                markersize=16,
                color="#d98b00",
                linestyle="none",
                label=f"chosen: {plain_label(best[0].checkpoint, 32)} ({best[0].score:.2f})",
            )
            ax.legend(loc="lower right")
        ax.set_xlabel("samples seen")
        ax.set_ylabel("MT-Bench score (0-10)")
        ax.set_ylim(0, 10)

    alt = (
        f"MT-Bench score of {len(points)} checkpoints; chosen "
        f"{plain_label(result.bestCheckpoint)} with {result.bestScore:.2f}."
        if result and points
        else "No MT-Bench scores yet."
    )
    return Plot("mt-bench.png", "MT-Bench per checkpoint", alt, _png(draw), bool(points))


def _bars(
    ax: object,
    title: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    limit: float,
    labels: bool,
) -> None:
    """Base and candidate bars per row; a missing score draws no bar (NaN)."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    ax.set_title(title)
    nan = float("nan")
    ys = list(range(len(rows)))
    height = 0.38
    ax.barh(
        [y - height / 2 for y in ys],
        [b if b is not None else nan for _, b, _ in rows],
        height=height, color=BASE_COLOR, label="base",
    )  # fmt: skip
    ax.barh(
        [y + height / 2 for y in ys],
        [c if c is not None else nan for _, _, c in rows],
        height=height, color=CANDIDATE_COLOR, label="candidate",
    )  # fmt: skip
    if labels:
        ax.set_yticks(ys, [label for label, _, _ in rows])
    else:
        ax.tick_params(axis="y", labelleft=False, left=False)
    ax.set_axisbelow(True)
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, limit)


def branch_plot(
    qna_files: Sequence[QnaFileResult],
    mt_branch: BranchScores | None,
    mmlu_branch: BranchScores | None,
) -> Plot:
    """MT-Bench-Branch and MMLU-Branch, candidate against base, overall and per task."""
    tasks = list(qna_files)[:MAX_TASKS]
    cut = len(qna_files) - len(tasks)
    has_data = mt_branch is not None or mmlu_branch is not None or bool(tasks)

    def draw(fig: object) -> None:
        from matplotlib.figure import Figure

        assert isinstance(fig, Figure)
        rows = max(len(tasks) + 1, 3)
        fig.set_size_inches(9.0, min(1.4 + 0.42 * rows, 14.0))
        if not has_data:
            ax = fig.subplots()
            ax.set_title("Branch benchmarks")
            _no_data(ax, "No MT-Bench-Branch or MMLU-Branch scores: eval-final has not finished.")
            return
        left, right = fig.subplots(1, 2, sharey=True)
        Row = tuple[str, float | None, float | None]
        mt_rows: list[Row] = [("overall", mt_branch.base, mt_branch.candidate)] if mt_branch else []
        mmlu_rows: list[Row] = (
            [("overall", mmlu_branch.base, mmlu_branch.candidate)] if mmlu_branch else []
        )
        if mt_branch or mmlu_branch:
            mt_rows = mt_rows or [("overall", None, None)]
            mmlu_rows = mmlu_rows or [("overall", None, None)]
        for q in tasks:
            mt_rows.append((task_label(q.path), q.mtBenchBranchBase, q.mtBenchBranchCandidate))
            mmlu_rows.append((task_label(q.path), q.mmluBranchBase, q.mmluBranchCandidate))
        _bars(left, "MT-Bench-Branch (0-10)", mt_rows, 10.0, labels=True)
        _bars(right, "MMLU-Branch (0-1)", mmlu_rows, 1.0, labels=False)
        left.invert_yaxis()
        handles, names = left.get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncols=2, frameon=False)
        if cut:
            fig.supxlabel(f"first {len(tasks)} of {len(qna_files)} tasks (by path)", fontsize=8)

    alt = (
        f"Candidate against base on MT-Bench-Branch and MMLU-Branch, overall and for "
        f"{len(tasks)} task(s)." if has_data else "No branch benchmark scores yet."
    )  # fmt: skip
    return Plot("branch.png", "Candidate vs base per task", alt, _png(draw), has_data)


def all_plots(
    metrics: dict[str, PhaseMetrics],
    mt_bench: MtBenchResult | None,
    qna_files: Sequence[QnaFileResult],
    mt_branch: BranchScores | None,
    mmlu_branch: BranchScores | None,
) -> list[Plot]:
    return [
        loss_plot(metrics),
        mt_bench_plot(mt_bench),
        branch_plot(qna_files, mt_branch, mmlu_branch),
    ]
