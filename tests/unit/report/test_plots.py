"""The plots: deterministic PNG bytes, real images of the data, a text panel without data."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from PIL import Image

from ilab_gitops.report.inputs import PhaseMetrics, load
from ilab_gitops.report.plots import all_plots, branch_plot, loss_plot, mt_bench_plot, plain_label
from tests.support.report_data import (
    RUN,
    finished_results,
    hostile_qna,
    write_failed_in_phase_2,
    write_finished,
)

ROOT = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image(png: bytes) -> Image.Image:
    assert png.startswith(PNG_MAGIC)
    return Image.open(io.BytesIO(png)).convert("RGB")


def _colours(png: bytes) -> set[object]:
    return {colour for _, colour in _image(png).getcolors(maxcolors=1 << 20) or []}


def test_same_data_gives_byte_identical_pngs(tmp_path: Path) -> None:
    data = load(write_finished(tmp_path / "r"), RUN)
    args = (data.metrics, data.mt_bench, data.qna_files, data.mt_bench_branch, data.mmlu_branch)
    first = [p.png for p in all_plots(*args)]
    second = [p.png for p in all_plots(*args)]
    assert first == second
    assert all(png.startswith(PNG_MAGIC) for png in first)


def test_pngs_are_the_same_bytes_in_another_process(tmp_path: Path) -> None:
    """No state of the first render (font cache, rc settings) leaks into the bytes."""
    folder = write_finished(tmp_path / "r")
    code = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from ilab_gitops.report.build import build\n"
        f"r = build(Path({str(folder)!r}), {RUN!r})\n"
        "print(' '.join(hashlib.sha256(p.png).hexdigest() for p in r.plots))\n"
    )
    env_hashes = []
    for seed in ("0", "12345"):
        env = {
            "PYTHONHASHSEED": seed,
            "PATH": "/usr/bin:/bin",
            "MPLCONFIGDIR": str(tmp_path / seed),
        }
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True, text=True, timeout=300, cwd=ROOT, check=False, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        env_hashes.append(proc.stdout.split())
    assert env_hashes[0] == env_hashes[1]
    assert len(env_hashes[0]) == 3


def test_png_has_no_software_tag_or_time() -> None:
    png = mt_bench_plot(finished_results().mtBench).png
    info = Image.open(io.BytesIO(png)).info
    assert "Software" not in info
    assert b"tIME" not in png
    assert b"matplotlib" not in png.lower()


def test_different_data_gives_a_different_picture(tmp_path: Path) -> None:
    data = load(write_finished(tmp_path / "r"), RUN)
    full = loss_plot(data.metrics)
    fewer = loss_plot({"train-phase-1": PhaseMetrics(data.metrics["train-phase-1"].points[:50])})
    assert full.png != fewer.png
    assert full.has_data and fewer.has_data


def test_loss_plot_draws_both_phases_in_their_colours(tmp_path: Path) -> None:
    data = load(write_finished(tmp_path / "r"), RUN)
    plot = loss_plot(data.metrics)
    colours = _colours(plot.png)
    assert (0x1F, 0x5F, 0xA8) in colours  # phase 1 line
    assert (0xB8, 0x56, 0x1B) in colours  # phase 2 line
    assert "train-phase-1: 400 steps" in plot.alt
    assert "train-phase-2: 300 steps" in plot.alt


def test_mt_bench_plot_marks_the_chosen_checkpoint() -> None:
    plot = mt_bench_plot(finished_results().mtBench)
    assert (0xD9, 0x8B, 0x00) in _colours(plot.png)  # the star
    assert "chosen samples_115200 with 7.12" in plot.alt


def test_plots_without_data_are_text_panels_not_empty_axes() -> None:
    empty_loss = loss_plot({})
    empty_mt = mt_bench_plot(None)
    empty_branch = branch_plot([], None, None)
    for plot in (empty_loss, empty_mt, empty_branch):
        assert not plot.has_data
        colours = _colours(plot.png)
        assert (0xF4, 0xF4, 0xF4) in colours  # the text panel's box
        assert (0x1F, 0x5F, 0xA8) not in colours  # no data drawn
    assert "No MT-Bench scores" in empty_mt.alt


def test_failed_phase_2_plots_phase_1_and_the_part_of_phase_2_that_ran(tmp_path: Path) -> None:
    data = load(write_failed_in_phase_2(tmp_path / "r"), RUN)
    plot = loss_plot(data.metrics)
    assert plot.has_data
    assert "train-phase-2: 120 steps" in plot.alt
    assert not mt_bench_plot(data.mt_bench).has_data
    assert not branch_plot(data.qna_files, data.mt_bench_branch, data.mmlu_branch).has_data


@pytest.mark.parametrize(
    "text",
    [
        "$\\frac{1}{0}$ $x^",
        "\\unknowncommand{",
        "line\nbreak\x00\x1b[31m",
        "emoji 🚀 and ℝ",
        "<script>alert(1)</script>",
        "a" * 5000,
    ],
)
def test_hostile_task_names_render_as_plain_text(text: str) -> None:
    plot = branch_plot([hostile_qna(text)], None, None)
    assert plot.has_data
    assert _image(plot.png).size[0] == 900


def test_plain_label_keeps_printable_text_and_cuts_from_the_left() -> None:
    assert plain_label("a\nb\x00c") == "a b c"
    cut = plain_label("x" * 10 + "tail", limit=8)
    assert cut == "…xxxtail"
