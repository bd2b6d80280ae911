"""`ilab-gitops report RUN --results DIR --out report.html`: a run's one-file HTML report.

Reads a local results folder (layout in `ilab_gitops.report.inputs`); exit 0 when written,
2 when a file in it is unreadable or matplotlib (the `report` extra) is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_INVALID = 2


def report(
    run: Annotated[str, typer.Argument(help="The run's name (metadata.name).")],
    results: Annotated[
        Path,
        typer.Option(
            "--results",
            help="The run's results folder (results.json, metrics/, markers/, spec.yaml).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    spec: Annotated[
        Path | None, typer.Option("--spec", help="The run's spec, when not in the results folder.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Also write the plots as PNG files here.")
    ] = None,
) -> None:
    """Write a run's one-file HTML report: plots, scores, step timeline, the spec."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        typer.echo(
            "ilab-gitops report: needs matplotlib: pip install 'ilab-gitops[report]'", err=True
        )
        raise typer.Exit(EXIT_INVALID) from None
    from ilab_gitops.report.build import build, write
    from ilab_gitops.report.inputs import ReportInputError

    try:
        made = build(results, run, spec)
    except ReportInputError as exc:
        typer.echo(f"ilab-gitops report: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    if not out.parent.is_dir():
        typer.echo(f"ilab-gitops report: {out.parent}: not a directory", err=True)
        raise typer.Exit(EXIT_INVALID)
    for path in write(made, out, plots):
        typer.echo(f"wrote {path}", err=True)
    missing = len(made.data.notes)
    if missing:
        typer.echo(
            f"ilab-gitops report: {missing} note(s) about missing data in the report", err=True
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
