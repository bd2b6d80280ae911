"""Runs-repo commands: `init` scaffolds a repo, `diff` and `pr-comment` explain a PR.

Heavy imports (GitPython, the compiler) happen inside the commands, so `ilab-gitops --help`
and `validate` stay fast and never load `git`.

Exit codes follow the CLI's contract: 0 ok; 2 invalid input, a forbidden change, or a
refusal to overwrite files; 3 internal error. `pr-comment` exits 0 whenever it wrote the
comment, also when the comment reports forbidden changes: `diff` is the gate, the comment is
the explanation, and it must reach the PR in both cases.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ilab_gitops.cli.formats import FormatOption, OutputFormat, resolve

if TYPE_CHECKING:
    from ilab_gitops.runsrepo.classify import DiffReport

EXIT_OK = 0
EXIT_INVALID = 2


class Engine(StrEnum):
    argocd = "argocd"
    flux = "flux"


class DiffOutput(StrEnum):
    text = "text"
    json = "json"


PathsArgument = Annotated[
    list[Path] | None,
    typer.Argument(help="Run spec files or folders, in the working tree. (default: runs)"),
]
BaseOption = Annotated[
    str, typer.Option("--base", help="Git ref to compare with, e.g. origin/main.")
]
EnvironmentsOption = Annotated[
    Path, typer.Option("--environments", "-e", help="Directory of Environment profiles.")
]
AllowRemovalsOption = Annotated[
    bool,
    typer.Option(
        "--allow-removals",
        help="Allow deleting run files (a maintainer's decision, e.g. to abort a run).",
    ),
]


def _fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"ilab-gitops {command}: {message}", err=True)
    return typer.Exit(EXIT_INVALID)


def init(
    *,
    directory: Annotated[
        Path, typer.Argument(help="Folder of the new runs repo; created when missing.")
    ],
    engine: Annotated[
        list[Engine] | None,
        typer.Option("--engine", help="Write the cluster bootstrap for this engine (repeat)."),
    ] = None,
    repo_url: Annotated[
        str | None,
        typer.Option("--repo-url", help="Git URL the engines pull; needed with --engine."),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(help="Bundled environment of the example run. (default: kind-dev)"),
    ] = None,
    workflows: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME@SHA of the reusable workflows the callers use (a full commit SHA)."
        ),
    ] = None,
    package: Annotated[
        str | None,
        typer.Option(
            help="What the README tells users to install: ilab-gitops[repo]==VERSION or "
            "'ilab-gitops[repo] @ git+https://HOST/OWNER/NAME@SHA'. "
            "(default: derived from this installation)"
        ),
    ] = None,
    owners: Annotated[
        str | None,
        typer.Option(
            help="GitHub team (@org/team) that owns environments/, .github/ and bootstrap/ "
            "in CODEOWNERS."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Create a runs repo: environment, example run, workflows, CODEOWNERS, README, bootstrap."""
    from ilab_gitops.runsrepo.scaffold import (
        EXAMPLE_RUN,
        InitOptions,
        ScaffoldError,
        conflicts,
        plan,
        write,
    )

    if directory.exists() and not directory.is_dir():
        raise _fail("init", f"{directory}: exists and is not a directory")
    chosen = {"engines": tuple(e.value for e in engine or ()), "repo_url": repo_url}
    if environment is not None:
        chosen["environment"] = environment
    if workflows is not None:
        chosen["workflows"] = workflows
    if package is not None:
        chosen["package"] = package
    if owners is not None:
        chosen["owners"] = owners
    try:
        options = InitOptions(**chosen)  # type: ignore[arg-type]
        files = plan(options)
    except ScaffoldError as err:
        raise _fail("init", str(err)) from None
    existing, blocked = conflicts(directory, files)
    if blocked:
        listing = "".join(f"\n  {p}" for p in blocked)
        raise _fail("init", f"cannot create these paths in {directory}:{listing}")
    if existing and not force:
        listing = "".join(f"\n  {p}" for p in existing)
        raise _fail(
            "init",
            f"{len(existing)} file(s) already exist in {directory}; nothing was written "
            f"(use --force to overwrite them):{listing}",
        )
    write(directory, files)
    typer.echo(f"wrote {len(files)} file(s) into {directory}/", err=True)
    typer.echo(
        "next: follow README.md (cluster prerequisites, secrets, branch protection), run "
        f"`ilab-gitops doctor {directory}`, then copy {EXAMPLE_RUN} to runs/<name>.yaml "
        "in a pull request to start a first run",
        err=True,
    )


def _compare(
    base: str, paths: list[Path], environments: Path, allow_removals: bool, command: str
) -> DiffReport:
    from ilab_gitops.load.workspace import discover, load_workspace
    from ilab_gitops.runsrepo.classify import compare
    from ilab_gitops.runsrepo.gitsource import (
        GitSourceError,
        deleted_files,
        open_repo,
        resolve,
        tree_files,
    )
    from ilab_gitops.runsrepo.history import historic_runs
    from ilab_gitops.runsrepo.snapshot import RepoPaths, from_blobs, from_workspace

    try:
        repo = open_repo(Path.cwd())
        commit = resolve(repo, base)
    except GitSourceError as err:
        raise _fail(command, str(err)) from None
    if repo.working_tree_dir is None:
        raise _fail(command, "a bare repository has no working tree to compare")
    where = RepoPaths.at(Path(repo.working_tree_dir))
    try:
        prefixes = [where.to_repo(p) for p in paths]
        env_prefix = where.to_repo(environments)
    except ValueError:
        raise _fail(command, "paths must lie inside the git repository") from None
    present = [p for p in paths if os.path.lexists(p)]
    workspace = load_workspace(present, environments)
    files, _ = discover(present)
    head = from_workspace(workspace, [where.to_repo(f) for f in files], where)
    refused: list[tuple[str, str]] = []
    run_blobs = tree_files(commit, prefixes, refused)
    env_blobs = tree_files(commit, [env_prefix], refused)
    base_side = from_blobs(base, run_blobs, env_blobs, where, sorted(set(refused)))
    history = historic_runs(deleted_files(repo, commit, prefixes))
    return compare(base_side, head, history, allow_removals=allow_removals)


def diff(
    *,
    base: BaseOption,
    paths: PathsArgument = None,
    environments: EnvironmentsOption = Path("environments"),
    output: Annotated[
        DiffOutput,
        typer.Option("--output", "-o", help="text for people, json for tools (= --format json)."),
    ] = DiffOutput.text,
    fmt: FormatOption = OutputFormat.auto,
    allow_removals: AllowRemovalsOption = False,
) -> None:
    """Compare the working tree's runs with REF: new, unchanged, rerun, removed, forbidden."""
    from ilab_gitops.diagnostics import format_diagnostics
    from ilab_gitops.runsrepo.report import as_json, as_text

    report = _compare(base, paths or [Path("runs")], environments, allow_removals, "diff")
    resolved = resolve(fmt)
    if output is DiffOutput.json or resolved == "json":
        sys.stdout.write(as_json(report))
    else:
        sys.stdout.write(as_text(report))
        shown = [*report.diagnostics, *report.forbidden, *report.approvals]
        sys.stderr.write(format_diagnostics(shown, resolved))
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


def pr_comment(
    *,
    base: BaseOption,
    paths: PathsArgument = None,
    environments: EnvironmentsOption = Path("environments"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the comment here instead of stdout.")
    ] = None,
    full_out: Annotated[
        Path | None, typer.Option("--full-out", help="Also write the untruncated comment here.")
    ] = None,
    details_url: Annotated[
        str | None,
        typer.Option("--details-url", help="Link to the full report (the workflow run)."),
    ] = None,
    max_chars: Annotated[
        int,
        typer.Option("--max-chars", min=1000, max=65_536, help="Size limit of the comment."),
    ] = 64_000,
    allow_removals: AllowRemovalsOption = False,
) -> None:
    """Write the sticky PR comment (Markdown) describing what merging does on the cluster."""
    from ilab_gitops.runsrepo.comment import pr_comment as build

    report = _compare(base, paths or [Path("runs")], environments, allow_removals, "pr-comment")
    body = build(report, budget=max_chars, details_url=details_url)
    if full_out is not None:
        full_out.write_text(build(report, budget=10**9), encoding="utf-8")
    if out is None:
        sys.stdout.write(body)
    else:
        out.write_text(body, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("diff")(diff)
    app.command("pr-comment")(pr_comment)
