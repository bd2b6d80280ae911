"""`ilab-gitops status [RUN]`: the steps of a run as the cluster shows them.

Exit codes: 0 every step shown is fine (or, with --watch, the run succeeded), 1 a step failed,
2 the cluster cannot be reached or the run does not exist. The kubernetes client is imported
only when the command runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
CLEAR_SCREEN = "\x1b[H\x1b[2J"


class Output(StrEnum):
    table = "table"
    json = "json"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _fingerprint(data: Any) -> str:
    """What must change for --watch to print again off a terminal: no clocks."""
    if isinstance(data, list):
        return json.dumps([_fingerprint(d) for d in data])
    kept = {k: v for k, v in data.items() if k not in ("observedAt", "steps")}
    kept["steps"] = [
        {k: v for k, v in s.items() if k != "durationSeconds"} for s in data.get("steps", [])
    ]
    return json.dumps(kept, sort_keys=True)


def _snapshot(
    run: str | None, namespace: str, output: Output, options: dict[str, str]
) -> tuple[str, Any, bool, bool]:
    """(text, data, failed, finished) for one look at the cluster."""
    from ilab_gitops.status import cluster, render
    from ilab_gitops.status.classify import classify_run

    connection = cluster.connect(options.get("context") or None)
    ns = namespace or connection.namespace
    names = [run] if run else cluster.list_runs(connection, ns)
    if not names:
        raise cluster.ClusterError(f"no runs in namespace {ns}")
    statuses = []
    for name in names:
        objects = cluster.read_run(
            connection, name, ns, options["argocd_namespace"], options["flux_namespace"]
        )
        if objects.empty:
            raise cluster.ClusterError(f"no objects of run {name} in namespace {ns}")
        statuses.append(classify_run(objects, _now()))
    failed = any(s.failed for s in statuses)
    finished = all(s.finished for s in statuses)
    if run:
        (status,) = statuses
        data: Any = render.status_json(status)
        text = render.render_json(status) if output is Output.json else render.render_table(status)
    else:
        data = [render.status_json(s) for s in statuses]
        text = (
            render.render_summary_json(statuses)
            if output is Output.json
            else render.render_summary(statuses)
        )
    return text, data, failed, finished


def _watch(look: Callable[[], tuple[str, Any, bool, bool]], output: Output, interval: float) -> int:
    """Redraw until the run ends: in place on a terminal, else only when something changed
    (one JSON document per line with --output json)."""
    tty = sys.stdout.isatty()
    last = ""
    while True:
        text, data, failed, finished = look()
        if tty and output is Output.table:
            sys.stdout.write(CLEAR_SCREEN + text)
        elif (mark := _fingerprint(data)) != last:
            last = mark
            json_line = json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"
            sys.stdout.write(json_line if output is Output.json else text + "\n")
        sys.stdout.flush()
        if failed:
            return EXIT_FAILED
        if finished:
            return EXIT_OK
        time.sleep(interval)


def status(
    run: Annotated[str | None, typer.Argument(help="Run name; all runs when left out.")] = None,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace of the run's workloads (default: the kubeconfig context's).",
        ),
    ] = "",
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Redraw as things change; exit 1 when a step fails, 0 when the run succeeded.",
        ),
    ] = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = (
        Output.table
    ),
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between looks with --watch.", min=1.0)
    ] = 5.0,
    context: Annotated[str, typer.Option("--context", help="kubeconfig context.")] = "",
    argocd_namespace: Annotated[
        str, typer.Option("--argocd-namespace", help="Where Argo CD Applications live.")
    ] = "argocd",
    flux_namespace: Annotated[
        str, typer.Option("--flux-namespace", help="Where the step Kustomizations live.")
    ] = "flux-system",
) -> None:
    """Show each step of a run: state, start, duration, pods, checkpoint, last message."""
    from ilab_gitops.status.cluster import ClusterError

    options = {
        "context": context,
        "argocd_namespace": argocd_namespace,
        "flux_namespace": flux_namespace,
    }

    def look() -> tuple[str, Any, bool, bool]:
        return _snapshot(run, namespace, output, options)

    try:
        if watch:
            raise typer.Exit(_watch(look, output, interval))
        text, _, failed, _ = look()
    except ClusterError as err:
        typer.echo(f"ilab-gitops status: {err}", err=True)
        raise typer.Exit(EXIT_INVALID) from err
    sys.stdout.write(text)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
