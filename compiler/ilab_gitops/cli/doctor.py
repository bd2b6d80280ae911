"""`ilab-gitops doctor [DIR]`: check a runs repo's own configuration, offline.

Exit 0 when clean; 2 with one line per problem (`path: message`) on standard error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ilab_gitops.cli.formats import FormatOption, OutputFormat, problems_json, resolve

EXIT_OK = 0
EXIT_INVALID = 2


def doctor(
    directory: Annotated[Path, typer.Argument(help="The runs repository's root folder.")] = Path(
        "."
    ),
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Check a runs repo: workflows pinned, variables documented, environments, CODEOWNERS."""
    from ilab_gitops import ghtext
    from ilab_gitops.runsrepo.doctor import CHECKS
    from ilab_gitops.runsrepo.doctor import doctor as run_checks

    if not directory.is_dir():
        typer.echo(ghtext.line(f"ilab-gitops doctor: {directory}: not a directory"), err=True)
        raise typer.Exit(EXIT_INVALID)
    problems = run_checks(directory)
    resolved = resolve(fmt)
    if resolved == "json":
        sys.stdout.write(problems_json([{"path": p.path, "message": p.message} for p in problems]))
    for problem in problems if resolved != "json" else ():
        shown = (
            ghtext.annotation(
                "error", problem.message, title="ilab-gitops doctor", file=problem.path
            )
            if resolved == "github"
            else ghtext.line(problem.as_text())
        )
        typer.echo(shown, err=True)
    if problems:
        typer.echo(f"ilab-gitops doctor: {len(problems)} problem(s)", err=True)
        raise typer.Exit(EXIT_INVALID)
    typer.echo(f"ilab-gitops doctor: {directory}: {len(CHECKS)} checks passed", err=True)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
