"""`validate` and `render`: plain functions returning exit codes.

They hold the logic of the two commands that run on every PR, push and Argo CD plugin
sync; cli.py wraps them for typer, and entry.py calls them without importing typer so that a
one-spec `validate` starts fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from ilab_gitops.diagnostics import Diagnostic, Format, format_diagnostics

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3

FormatChoice = Literal["text", "github", "json", "auto"]
FORMAT_CHOICES: tuple[FormatChoice, ...] = ("text", "github", "json", "auto")


def resolve_format(fmt: FormatChoice) -> Format:
    """`auto` is GitHub annotations under GitHub Actions, text elsewhere."""
    if fmt == "auto":
        return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return fmt


def report(diagnostics: Sequence[Diagnostic], fmt: FormatChoice) -> None:
    """JSON goes to stdout (it is the output); text and annotations go to stderr."""
    resolved = resolve_format(fmt)
    text = format_diagnostics(diagnostics, resolved)
    if resolved == "json":
        sys.stdout.write(text)
    elif text:
        sys.stderr.write(text)


@contextlib.contextmanager
def batch_memory() -> Iterator[None]:
    """Pause the cyclic garbage collector while specs are loaded and compiled.

    Both build many small, acyclic dicts and keep them until the end; the collector then
    rescans the growing heap again and again, which more than doubled compile time for a
    thousand runs. Reference counting still frees everything; the collector runs again after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def validate(paths: Sequence[Path], environments: Path, fmt: FormatChoice) -> int:
    """Check PipelineRun and Environment files; report every problem with file:line:col."""
    from ilab_gitops.workspace import load_workspace

    with batch_memory():
        ws = load_workspace(paths, environments)
    report(ws.diagnostics, fmt)
    if not ws.ok:
        return EXIT_INVALID
    if resolve_format(fmt) != "json":
        _say(
            f"{ws.files} file(s) valid: {len(ws.runs)} run(s), "
            f"{len(ws.environments)} environment(s)"
        )
    return EXIT_OK


def render(
    runs: Sequence[Path],
    environments: Path,
    out: str,
    *,
    check: bool,
    prune: bool,
    fmt: FormatChoice,
) -> int:
    """Compile runs into `out/<run>/`, one folder per step, atomically (or check, or stream)."""
    with batch_memory():
        return _render(runs, environments, out, check=check, prune=prune, fmt=fmt)


def _render(
    runs: Sequence[Path],
    environments: Path,
    out: str,
    *,
    check: bool,
    prune: bool,
    fmt: FormatChoice,
) -> int:
    from ilab_gitops.workspace import load_workspace

    ws = load_workspace(runs, environments)
    report(ws.diagnostics, fmt)
    if not ws.ok:
        return EXIT_INVALID
    if out == "-":
        from ilab_gitops.manifests import compile_run
        from ilab_gitops.render import render_stream

        loaded = sorted(ws.runs, key=lambda r: r.run.metadata.name)
        sys.stdout.write(render_stream(compile_run(r.run, r.environment) for r in loaded))
        return EXIT_OK
    from ilab_gitops.output import read_tree, tree_differences, write_tree
    from ilab_gitops.parallel import render_runs
    from ilab_gitops.render import merge_rendered

    root = Path(out)
    compiled = render_runs([(r.run, r.environment) for r in ws.runs])
    on_disk = read_tree(root)
    files = merge_rendered(on_disk, compiled, prune=prune)
    if check:
        differences = tree_differences(on_disk, files)
        for path in differences:
            _say(f"{Path(out, path).as_posix()}: out of date")
        if differences:
            command = " ".join(["ilab-gitops render", *(str(p) for p in runs)])
            if out != "rendered":
                command += f" --out {out}"
            _say(f"{len(differences)} rendered file(s) differ; run: {command}")
            return EXIT_DIFFERENT
        _say(f"{out}: up to date ({len(compiled)} run(s))")
        return EXIT_OK
    write_tree(root, files)
    _say(f"rendered {len(compiled)} run(s) into {root.as_posix()}/")
    return EXIT_OK
