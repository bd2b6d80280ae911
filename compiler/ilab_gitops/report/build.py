"""Results folder in, report files out: the one entry point the command and the publish step use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ilab_gitops.report.inputs import ReportData, load
from ilab_gitops.report.page import render_page
from ilab_gitops.report.plots import Plot, all_plots

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Report:
    data: ReportData
    plots: list[Plot]
    html: str


def build(folder: Path, run: str, spec: Path | None = None) -> Report:
    """Read the folder and render the plots and the page (raises ReportInputError)."""
    data = load(folder, run, spec)
    plots = all_plots(
        data.metrics, data.mt_bench, data.qna_files, data.mt_bench_branch, data.mmlu_branch
    )
    return Report(data=data, plots=plots, html=render_page(data, plots))


def write_atomic(path: Path, content: bytes) -> None:
    """Replace `path` in one rename, so a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(report: Report, out: Path, plots_dir: Path | None = None) -> list[Path]:
    """Write the page (and the PNGs when `plots_dir` is given); returns the paths written."""
    written: list[Path] = []
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for plot in report.plots:
            write_atomic(plots_dir / plot.name, plot.png)
            written.append(plots_dir / plot.name)
    write_atomic(out, report.html.encode("utf-8"))
    written.append(out)
    return written
