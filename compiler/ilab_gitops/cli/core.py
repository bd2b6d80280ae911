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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ilab_gitops.diagnostics import Diagnostic, Format, format_diagnostics
from ilab_gitops.load.treescan import escape

if TYPE_CHECKING:
    from ilab_gitops.emit.incremental import Updater
    from ilab_gitops.emit.output import RenderedTree
    from ilab_gitops.emit.parallel import Pair
    from ilab_gitops.load.treescan import Walk
    from ilab_gitops.load.workspace import Found

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
    from ilab_gitops.load.workspace import load_workspace

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
    """Compile runs into `out/<environment>/<run>/`, one folder per step, atomically (or
    check the whole tree, or stream)."""
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
    from ilab_gitops.load.workspace import find_files, load_workspace

    found = find_files(runs, environments)  # one walk of the inputs, whichever path renders
    if out != "-" and not check:
        done = _render_batch(found, runs, environments, Path(out), prune=prune, fmt=fmt)
        if done is not None:
            return done
    ws = load_workspace(runs, environments, keep_documents=False, found=found)
    report(ws.diagnostics, fmt)
    if not ws.ok:
        return EXIT_INVALID
    if out == "-":
        from ilab_gitops.emit.render import iter_stream
        from ilab_gitops.manifests import compile_run

        loaded = sorted(ws.runs, key=lambda r: r.run.metadata.name)
        for text in iter_stream(compile_run(r.run, r.environment) for r in loaded):
            sys.stdout.write(text)
        return EXIT_OK
    from ilab_gitops.emit import incremental
    from ilab_gitops.emit.output import scan_tree, survey, write_tree
    from ilab_gitops.emit.parallel import render_runs
    from ilab_gitops.emit.render import merge_rendered, run_folder

    root = Path(out)
    pairs = [(r.run, r.environment) for r in ws.runs]
    env_names = sorted(ws.environments)
    if check:
        compiled = render_runs(pairs)
        expected = merge_rendered({}, compiled, environments=env_names, prune=True)
        return _check(runs, out, scan_tree(root), expected, len(compiled))
    present = survey(root)
    folders = [run_folder(env.metadata.name, run.metadata.name) for run, env in pairs]
    refused = [r for r in present.refused if r.path == "." or not prune]
    if refused:
        for entry in refused:
            _say(f"{_shown(out, entry.path)}: not read: {entry.reason}")
        _say(
            f"{out}: holds entries the compiler cannot keep; nothing written "
            "(--prune removes everything under it that the compiler does not write)"
        )
        return EXIT_INVALID
    blocked = [] if prune else incremental.conflicts(present, folders, env_names)
    if blocked:
        for path in blocked:
            _say(f"{_shown(out, path)}: in the way of the folders and index files render writes")
        _say(f"{escape(out)}: nothing written (--prune replaces them)")
        return EXIT_INVALID
    if incremental.supported(root, present, folders, env_names):
        return _update(out, pairs, present, env_names, prune=prune)
    if not present.files and not present.refused and not present.empty_dirs:
        return _fresh(out, pairs, env_names)
    tree = scan_tree(root)
    compiled = render_runs(pairs)
    files = merge_rendered(tree.files, compiled, environments=env_names, prune=prune)
    if prune:
        for line in _removed(out, tree, files, compiled):
            _say(line)
    write_tree(root, files)
    _say(f"rendered {len(compiled)} run(s) into {escape(root.as_posix())}/")
    return EXIT_OK


def _fresh(out: str, pairs: Sequence[Pair], env_names: list[str]) -> int:
    """Render into an empty or missing `out`: each chunk of runs is written into the staging
    folder as it comes, then the whole tree is swapped in."""
    from ilab_gitops.emit.output import write_tree_stream
    from ilab_gitops.emit.parallel import iter_render_runs
    from ilab_gitops.emit.render import merge_rendered, owner_folder

    names: dict[str, dict[str, str]] = {}

    def batches() -> Iterator[dict[str, str | bytes]]:
        for chunk in iter_render_runs(pairs):
            batch: dict[str, str | bytes] = {}
            for folder, files in chunk.items():
                names[folder] = dict.fromkeys(files, "")
                batch.update((f"{folder}/{rel}", text) for rel, text in files.items())
            yield batch
        merged = merge_rendered({}, names, environments=env_names, prune=True)
        yield {path: text for path, text in merged.items() if not owner_folder(path)}

    root = Path(out)
    write_tree_stream(root, batches())
    _say(f"rendered {len(names)} run(s) into {escape(root.as_posix())}/")
    return EXIT_OK


def _render_batch(
    found: Found,
    runs: Sequence[Path],
    environments: Path,
    root: Path,
    *,
    prune: bool,
    fmt: FormatChoice,
) -> int | None:
    """A large render on every core (`emit.batch`), first or in place; None when it does not
    apply (few runs, a tree that needs rebuilding or refusing, an environment among the runs),
    and the serial path decides."""
    from ilab_gitops.emit import batch, incremental
    from ilab_gitops.emit.output import survey
    from ilab_gitops.emit.parallel import worker_count

    workers = worker_count()
    if not batch.worth_it(found, workers):
        return None
    if batch.eligible(root):
        result = batch.render(runs, environments, root, workers, found)
    else:
        present = survey(root)
        if not incremental.supported(root, present):  # `batch.update` checks the runs' folders
            return None

        def finish(
            updater: Updater, names: dict[str, dict[str, str]], envs: list[str]
        ) -> list[str]:
            return finish_update(str(root), updater, names, present, envs, prune=prune)

        result = batch.update(
            runs, environments, root, present, workers=workers, finish=finish, found=found
        )
    if result is None:
        return None
    report(result.diagnostics, fmt)
    if not result.ok:
        return EXIT_INVALID
    for line in result.lines:  # in place: what was removed, then the summary
        _say(line)
    if not result.lines:
        _say(f"rendered {result.runs} run(s) into {escape(root.as_posix())}/")
    return EXIT_OK


def _update(
    out: str, pairs: Sequence[Pair], present: Walk, env_names: list[str], *, prune: bool
) -> int:
    """Render into an existing tree in place, run folder by run folder (`emit.incremental`):
    each chunk of runs is written and dropped as it comes, so memory does not grow with the
    number of runs."""
    from ilab_gitops.emit.incremental import Updater
    from ilab_gitops.emit.parallel import iter_render_runs

    names: dict[str, dict[str, str]] = {}
    with Updater(Path(out), present) as updater:
        for chunk in iter_render_runs(pairs):
            for folder, files in chunk.items():
                updater.put_run(folder, files)
                names[folder] = dict.fromkeys(files, "")
        lines = finish_update(out, updater, names, present, env_names, prune=prune)
    for line in lines:
        _say(line)
    return EXIT_OK


def finish_update(
    out: str,
    updater: Updater,
    names: dict[str, dict[str, str]],
    present: Walk,
    env_names: list[str],
    *,
    prune: bool,
) -> list[str]:
    """After the run folders of an in-place update: the indexes, then (pruning) what no spec
    renders any more; the lines to print, the summary last."""
    from ilab_gitops.emit.output import RenderedTree
    from ilab_gitops.emit.render import INDEX_FILE, merge_rendered, owner_folder

    before = dict.fromkeys(present.files, b"")
    after = merge_rendered(before, names, environments=env_names, prune=prune)
    for path, text in after.items():
        if path == INDEX_FILE or (path.count("/") == 1 and path.endswith(f"/{INDEX_FILE}")):
            assert isinstance(text, str)
            updater.put_file(path, text)
    updater.commit_deferred()  # run folders that drop their flux/ folder, now unlisted
    gone = [path for path in present.files if path not in after]
    lines = _removed(out, RenderedTree(files=before), after, names) if prune else []
    kept = {owner_folder(path) for path in after}
    for folder in sorted({owner_folder(path) for path in gone} - kept - {""}):
        updater.remove(folder)
    for path in gone:  # loose files; a kept run folder was replaced whole
        if not owner_folder(path):
            updater.remove(path)
    updater.remove_empty_folders(keep={p.rsplit("/", 1)[0] for p in after if "/" in p})
    changes = updater.changes
    lines.append(
        f"rendered {len(names)} run(s) into {escape(Path(out).as_posix())}/ "
        f"({len(changes.written)} written, {changes.unchanged} unchanged)"
    )
    return lines


def _shown(out: str, path: str) -> str:
    """A path below `out` for a message: one line, odd characters escaped."""
    return escape(out if path == "." else Path(out, path).as_posix())


def _check(
    runs: Sequence[Path],
    out: str,
    tree: RenderedTree,
    expected: Mapping[str, str | bytes],
    count: int,
) -> int:
    """Compare the whole tree under `out` with what the given specs compile to.

    Exit 1 when the tree holds only files the compiler writes, some missing or with other
    text (a stale render: run `render`); exit 2 when it holds anything the compiler never
    writes (extra or binary files, folders, links, odd names).
    """
    from ilab_gitops.emit.output import tree_differences

    text = {path: data for path, data in expected.items() if isinstance(data, str)}
    differences = tree_differences(tree, text)
    for difference in differences:
        _say(f"{_shown(out, difference.path)}: {difference.message}")
    if not differences:
        _say(f"{escape(out)}: up to date ({count} run(s))")
        return EXIT_OK
    command = " ".join(["ilab-gitops render", *(escape(str(p)) for p in runs)])
    if out != "rendered":
        command += f" --out {escape(out)}"
    foreign = sum(1 for d in differences if d.foreign)
    if foreign:
        _say(
            f"{foreign} path(s) under {escape(out)}/ hold content the compiler never writes "
            f"from these specs; {command} --prune removes them"
        )
        return EXIT_INVALID
    _say(f"{len(differences)} rendered file(s) differ; run: {command}")
    return EXIT_DIFFERENT


def _removed(
    out: str,
    tree: RenderedTree,
    files: Mapping[str, str | bytes],
    compiled: Mapping[str, object],
) -> list[str]:
    """One line per folder, file or entry that `--prune` drops.

    A top folder that is no environment's (e.g. `rendered/<run>/` of the layout before
    environments had folders) is reported once, as is each run folder no spec renders.
    """
    from ilab_gitops.emit.render import owner_folder

    environments = {p.split("/", 1)[0] for p in files if "/" in p}
    lines = [f"removed {_shown(out, r.path)}: {r.reason}" for r in tree.refused]
    reported: set[str] = set()
    for path in sorted(set(tree.files) - set(files)):
        top = path.split("/", 1)[0]
        folder = owner_folder(path)
        if "/" in path and top not in environments:
            key, why = top, "not the folder of an environment with runs here"
        elif folder and folder not in compiled:
            key, why = folder, "no spec renders this run folder"
        else:
            lines.append(f"removed {_shown(out, path)}: not written by the compiler")
            continue
        if key not in reported:
            reported.add(key)
            lines.append(f"removed {_shown(out, key)}/: {why}")
    return lines
