"""`ilab-gitops doctor [DIR]`: check a runs repo's own configuration, offline.

Exit 0 when clean; 2 with one line per problem (`path: message`) on standard error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_OK = 0
EXIT_INVALID = 2


def doctor(
    directory: Annotated[Path, typer.Argument(help="The runs repository's root folder.")] = Path(
        "."
    ),
) -> None:
    """Check a runs repo: workflows pinned, variables documented, environments, CODEOWNERS."""
    from ilab_gitops.runsrepo.doctor import CHECKS
    from ilab_gitops.runsrepo.doctor import doctor as run_checks

    if not directory.is_dir():
        typer.echo(f"ilab-gitops doctor: {directory}: not a directory", err=True)
        raise typer.Exit(EXIT_INVALID)
    problems = run_checks(directory)
    for problem in problems:
        typer.echo(problem.as_text(), err=True)
    if problems:
        typer.echo(f"ilab-gitops doctor: {len(problems)} problem(s)", err=True)
        raise typer.Exit(EXIT_INVALID)
    typer.echo(f"ilab-gitops doctor: {directory}: {len(CHECKS)} checks passed", err=True)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
