"""Markdown fragments shared by PR comments and release notes: models and overall scores."""

from __future__ import annotations

from collections.abc import Sequence

from ilab_gitops import ghtext
from ilab_gitops.results import markdown as md
from ilab_gitops.results.locations import Links
from ilab_gitops.results.model import RunResults

MT_DIGITS = 2
MMLU_DIGITS = 3


def candidate_model(results: RunResults) -> str:
    """The candidate as a link to Hugging Face when it was published there."""
    model = results.model
    if model.huggingFaceRepo:
        label = model.huggingFaceRepo
        if model.huggingFaceRevision:
            label += f"@{model.huggingFaceRevision}"
        url = model.huggingFaceUrl or f"https://huggingface.co/{model.huggingFaceRepo}" + (
            f"/tree/{model.huggingFaceRevision}" if model.huggingFaceRevision else ""
        )
        shown = ghtext.link(label, url)
    else:
        shown = ghtext.code(model.s3Uri)
    best = results.mtBench
    return (
        f"{shown} (checkpoint {ghtext.code(results.candidateCheckpoint)}, "
        f"MT-Bench {md.score(best.bestScore, MT_DIGITS)})"
    )


def model_lines(results: RunResults) -> list[str]:
    lines = [
        f"- **Base model:** {ghtext.code(results.baseModel)}",
        f"- **Candidate model:** {candidate_model(results)}",
    ]
    if results.model.huggingFaceRepo:
        lines.append(f"- **Stored at:** {ghtext.code(results.model.s3Uri)}")
    return lines


def overall_rows(results: RunResults) -> list[list[str]]:
    """Rows `benchmark | base | candidate | delta` for the two branch benchmarks."""
    mt, mmlu = results.mtBenchBranch, results.mmluBranch
    rows = [
        [
            "MT-Bench-Branch",
            md.score(mt.base, MT_DIGITS),
            md.score(mt.candidate, MT_DIGITS),
            md.delta(mt.base, mt.candidate, MT_DIGITS),
        ]
    ]
    if mmlu is not None:
        rows.append(
            [
                "MMLU-Branch",
                md.score(mmlu.base, MMLU_DIGITS),
                md.score(mmlu.candidate, MMLU_DIGITS),
                md.delta(mmlu.base, mmlu.candidate, MMLU_DIGITS),
            ]
        )
    return rows


def finished_date(results: RunResults) -> str:
    """The date part of `finishedAt` (RFC 3339)."""
    return results.finishedAt[:10]


#: How the report files are named in links.
_REPORT_LABELS = {
    "report.html": "HTML report",
    "loss.png": "loss curves",
    "mt-bench.png": "MT-Bench per checkpoint",
    "branch.png": "candidate vs base per task",
}


def report_line(run: str, files: Sequence[str], links: Links) -> list[str]:
    """`- **Report:** ...` linking the report and plots attached to the run's release (the
    names are ours, fixed in `REPORT_FILES`); nothing when there are none."""
    from ilab_gitops.results.release_notes import release_tag

    shown = [
        ghtext.link(_REPORT_LABELS.get(name, name), links.release_asset(release_tag(run), name))
        for name in files
    ]
    return [f"- **Report:** {' · '.join(shown)}"] if shown else []
