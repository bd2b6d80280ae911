"""`ilab-gitops status`: output and exit codes, with the cluster reads replaced by fixtures."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from ilab_gitops.cli import status as command
from ilab_gitops.cli import typer_app as cli
from ilab_gitops.status import cluster
from ilab_gitops.status.classify import RunObjects
from tests.unit.status.loader import GOLDEN, scenario


def _fake_cluster(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> list[str]:
    """Each read returns the next scenario (the last one repeats); returns the read log."""
    reads: list[str] = []
    looks: Iterator[tuple[RunObjects, datetime]] = iter([scenario(n) for n in names])
    last: list[tuple[RunObjects, datetime]] = []

    def read_run(connection: Any, run: str, namespace: str, *args: Any) -> RunObjects:
        last[:] = [next(looks, last[0] if last else scenario(names[-1]))]
        reads.append(f"{run}@{namespace}")
        return last[0][0]

    connection = cluster.Connection(None, "ilab")  # type: ignore[arg-type]
    monkeypatch.setattr(cluster, "connect", lambda context=None: connection)
    monkeypatch.setattr(cluster, "read_run", read_run)
    monkeypatch.setattr(cluster, "list_runs", lambda connection, namespace: ["granite-demo"])
    monkeypatch.setattr(command, "_now", lambda: last[0][1])
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    return reads


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.app, ["status", *args])


def test_table_of_a_running_run(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _fake_cluster(monkeypatch, ["argocd-training"])
    result = run("granite-demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / "argocd-training.txt").read_text()
    assert reads == ["granite-demo@ilab"]


def test_json_of_a_failed_run_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, ["argocd-failed"])
    result = run("granite-demo", "--output", "json", "--namespace", "ml")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data == json.loads((GOLDEN / "argocd-failed.json").read_text())
    assert data["failed"] is True


def test_all_runs_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, ["argocd-queued"])
    result = run()
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].split()[:4] == [
        "granite-demo",
        "queued",
        "train-phase-1",
        "1/7",
    ]


def test_unknown_run_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, ["argocd-queued"])
    monkeypatch.setattr(cluster, "read_run", lambda *a, **k: RunObjects("nope", "ilab"))
    result = run("nope")
    assert result.exit_code == 2
    assert "no objects of run nope in namespace ilab" in result.stderr


def test_unreachable_cluster_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(context: str | None = None) -> cluster.Connection:
        raise cluster.ClusterError("no cluster configuration: nothing found")

    monkeypatch.setattr(cluster, "connect", connect)
    result = run("granite-demo")
    assert result.exit_code == 2
    assert result.stderr == "ilab-gitops status: no cluster configuration: nothing found\n"


def test_watch_prints_each_change_and_exits_1_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    looks = ["argocd-queued", "argocd-queued", "argocd-training", "argocd-failed"]
    reads = _fake_cluster(monkeypatch, looks)
    result = run("granite-demo", "--watch", "--output", "json")
    assert result.exit_code == 1
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    # The repeated look printed nothing new.
    assert [d["steps"][1]["state"] for d in documents] == ["queued", "running", "succeeded"]
    assert documents[-1]["failed"] is True
    assert len(reads) == 4


def test_watch_exits_0_when_the_run_succeeded(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, ["argocd-image-pull", "argocd-succeeded"])
    result = run("granite-demo", "--watch")
    assert result.exit_code == 0
    tables = result.stdout.split("\n\nrun ")
    assert len(tables) == 2
    assert "publish        succeeded" in tables[-1]
    assert "! granite-demo-eval-mt-bench-7d41c0e2-x7k2p/step: ImagePullBackOff" in tables[0]


def test_watch_redraws_in_place_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, ["argocd-training", "argocd-succeeded"])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    out: list[str] = []
    monkeypatch.setattr(sys.stdout, "write", out.append, raising=False)
    code = command._watch(
        lambda: command._snapshot(
            "granite-demo",
            "",
            command.Output.table,
            {"context": "", "argocd_namespace": "argocd", "flux_namespace": "flux-system"},
        ),
        command.Output.table,
        1.0,
    )
    assert code == 0
    assert [chunk.startswith(command.CLEAR_SCREEN) for chunk in out] == [True, True]
