"""`ilab-gitops report`: files written, exit codes, messages for bad input (nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib")

from ilab_gitops.cli import typer_app as cli
from ilab_gitops.report.inputs import read_metrics
from ilab_gitops.results.locations import REPORT_FILES
from tests.support.report_data import RUN, write_failed_in_phase_2, write_finished


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["report", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_report_writes_the_page_and_the_plots(tmp_path: Path) -> None:
    folder = write_finished(tmp_path / "results")
    out = tmp_path / "report.html"
    code, output = _invoke(
        RUN, "--results", str(folder), "--out", str(out), "--plots", str(tmp_path / "plots")
    )
    assert code == 0, output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "branch.png",
        "loss.png",
        "mt-bench.png",
    ]
    assert f"wrote {out}" in output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    # The results sync attaches exactly these to the run's release (results.locations).
    assert {out.name, *(p.name for p in (tmp_path / "plots").iterdir())} == set(REPORT_FILES)


def test_report_of_a_failed_run_succeeds_and_counts_the_notes(tmp_path: Path) -> None:
    folder = write_failed_in_phase_2(tmp_path / "results")
    out = tmp_path / "report.html"
    code, output = _invoke(RUN, "--results", str(folder), "--out", str(out))
    assert code == 0, output
    assert "note(s) about missing data" in output
    assert "incomplete" in out.read_text(encoding="utf-8")


def test_spec_option_is_used_when_the_folder_has_none(tmp_path: Path) -> None:
    folder = write_finished(tmp_path / "results")
    spec = folder / "spec.yaml"
    moved = spec.rename(tmp_path / "granite.yaml")
    out = tmp_path / "report.html"
    code, _ = _invoke(RUN, "--results", str(folder), "--out", str(out), "--spec", str(moved))
    assert code == 0
    assert "pullRequests: [1412, 1420, 1433]" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("results.json", '{"run": "granite-20261124",\n  "x": }', "results.json:2:8: invalid JSON"),
        ("results.json", json.dumps({"run": RUN}), "results.json:1:1: specSha256: Field required"),
        ("results.json", b"\xff\xfe", "results.json:1:1: not UTF-8 text"),
        ("markers/prepare.json", "[]", "markers/prepare.json:1:1: (document): Input should be"),
    ],
)
def test_bad_files_exit_2_with_file_and_field(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    folder = write_finished(tmp_path / "results")
    target = folder / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    out = tmp_path / "report.html"
    code, output = _invoke(RUN, "--results", str(folder), "--out", str(out))
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert not out.exists()


def test_results_of_another_run_are_refused(tmp_path: Path) -> None:
    folder = write_finished(tmp_path / "results", run="other-run")
    code, output = _invoke(RUN, "--results", str(folder), "--out", str(tmp_path / "r.html"))
    assert code == 2
    assert "run: is 'other-run', expected 'granite-20261124'" in output


def test_missing_folder_exits_2(tmp_path: Path) -> None:
    code, output = _invoke(
        RUN, "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")
    )
    assert code == 2
    assert "not a directory" in output


def test_metrics_keep_the_last_entry_per_step_and_skip_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [
        {"hparams": True},
        {"step": 1, "avg_loss": 2.0, "epoch": 0, "samples_seen": 4},
        {"step": 2, "avg_loss": 1.5, "epoch": 0, "samples_seen": 8},
        {"step": 2, "avg_loss": 1.4, "epoch": 0, "samples_seen": 8},  # resumed: logged again
        {"step": 3, "avg_loss": "NaN"},
        {"step": True, "avg_loss": 1.0},
    ]
    text = (
        "\n".join(json.dumps(line) for line in lines) + '\n{"step": 3, "avg_loss": NaN}\nnot json\n'
    )
    path.write_text(text)
    metrics = read_metrics(path)
    assert [(p.step, p.loss) for p in metrics.points] == [(1, 2.0), (2, 1.4)]
    assert metrics.skipped == 4
