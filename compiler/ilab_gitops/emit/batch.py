"""Large renders on every core: each worker reads, checks, compiles and stages its share of
the run files.

Reading and checking the specs is a third of a large render; done in the parent, it leaves the
other cores idle until the last file is read. Here the environments are read first (they are
few, and every run is checked against one), then forked workers take every n-th run file:
each reads and checks it exactly as `load_workspace` does, and when it is valid compiles it
and stages its folder: for a first render straight into the staging tree, which is swapped in
whole at the end; in an existing tree (`emit.incremental`) only when its files change, as a
folder the parent later exchanges with the old one. Workers send back only what the checks
across files need (names, environments, problems) and which folders they staged. The parent
runs those checks in file order with the same code as `load_workspace`, so the diagnostics are
the same; if any is an error, the staging folder is deleted and nothing was written. A run
file that turns out to hold an Environment means the serial path must decide (environments
first-come): the parallel attempt is abandoned and the caller renders serially.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ilab_gitops.diagnostics import Diagnostic, sort_diagnostics
from ilab_gitops.emit import output, parallel
from ilab_gitops.emit.incremental import Updater, conflicts
from ilab_gitops.emit.render import merge_rendered, owner_folder, render_run, run_folder
from ilab_gitops.load import workspace
from ilab_gitops.load.sources import Document
from ilab_gitops.load.treescan import Walk
from ilab_gitops.load.workspace import (
    Found,
    RunRead,
    Workspace,
    check_files,
    resolve_runs,
    too_many_runs,
)
from ilab_gitops.manifests import compile_run


@dataclass
class _Share:
    """What one worker sends back: the parent needs no spec, model or rendered text."""

    reads: list[tuple[int, RunRead]] = field(default_factory=list)  # (file index, read)
    invalid_runs: list[tuple[int, Document, str]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # run folder -> its files
    staged: dict[str, str | None] = field(default_factory=dict)  # in place: folder -> staged
    environment_found: bool = False  # a run file held an Environment: render serially


@dataclass
class _Batch:
    """The state forked workers inherit."""

    files: list[Path]
    ws: Workspace
    staging: Path
    updater: Updater | None = None  # in place


_BATCH: list[_Batch] = []


def _work(share: tuple[int, int]) -> _Share:
    start, step = share
    batch = _BATCH[-1]
    out = _Share()
    envs = batch.ws.environments
    made = {"", *envs}
    for index in range(start, len(batch.files), step):
        local = Workspace(environments=dict(envs))
        local.invalid_environments = set(batch.ws.invalid_environments)
        reads = check_files([batch.files[index]], local, keep=False)
        out.diagnostics.extend(local.diagnostics)
        out.invalid_runs.extend((index, doc, env) for doc, env in local.invalid_runs)
        if local.environment_documents:
            out.environment_found = True
            return out
        for document, run, checked in reads:
            out.reads.append(
                (index, RunRead(document, run.metadata.name, run.spec.environment, checked, None))
            )
            if checked is None or any(d.severity == "error" for d in checked):
                continue
            env = envs[run.spec.environment][1]
            folder = run_folder(env.metadata.name, run.metadata.name)
            files = render_run(compile_run(run, env))
            if batch.updater is not None:
                if folder in out.staged:
                    continue  # a second run of the same name: an error the parent reports
                staged = batch.updater.staging_path(f"w{start}-{index}")
                changed = batch.updater.stage_run(folder, files, staged)
                out.staged[folder] = staged if changed else None
                out.files[folder] = list(files)
                continue
            try:
                output.write_files(
                    batch.staging, {f"{folder}/{rel}": text for rel, text in files.items()}, made
                )
            except FileExistsError:
                continue  # a second run of the same name: an error the parent reports
            out.files[folder] = list(files)
    return out


@dataclass
class Result:
    """The diagnostics of every file, and how many runs were written (when all is valid)."""

    diagnostics: list[Diagnostic]
    runs: int
    lines: list[str] = field(default_factory=list)  # to print after the diagnostics

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def eligible(root: Path) -> bool:
    """A first render: nothing at `root` yet, and processes can be forked."""
    return not os.path.lexists(root) and "fork" in multiprocessing.get_all_start_methods()


#: Called inside an in-place update once every staged folder is swapped in, with the run
#: folders' file names and the environments: writes the indexes, removes what no spec
#: renders any more (cli.core's `finish_update`) and returns the lines to print.
Finish = Callable[[Updater, dict[str, dict[str, str]], list[str]], list[str]]


def worth_it(found: Found, workers: int) -> bool:
    """Enough run files for forked workers to pay off, and not more than `MAX_RUNS` (the
    serial path then reports the limit before anything is compiled)."""
    count = len(found.run_files)
    return workers >= 2 and parallel.PARALLEL_MIN_RUNS <= count <= workspace.MAX_RUNS


def _prepare(found: Found, workers: int) -> tuple[Workspace, list[Path]] | None:
    """The environments, read first, and the run files; None when the batch is too small to
    be worth forking for or the environments folder holds a run."""
    if not worth_it(found, workers):
        return None
    ws = Workspace(diagnostics=list(found.diagnostics))
    if check_files(found.environment_files, ws, keep=False):
        return None  # a run in the environments folder: the serial path orders it
    ws.files = len(found.files)
    return ws, found.run_files


def render(
    paths: Sequence[Path], environments_dir: Path | None, root: Path, workers: int, found: Found
) -> Result | None:
    """Check and render into the missing folder `root`; None when the batch is too small,
    `root` appeared meanwhile, or a run file holds an Environment (render serially then)."""
    root = root.absolute()
    if not root.parent.is_dir():  # the serial path makes it once every spec checked out
        return None
    prepared = _prepare(found, workers)
    if prepared is None:
        return None
    ws, runs_files = prepared
    with output.locked(root):
        output.recover(root)
        if os.path.lexists(root):  # another render made it meanwhile: update it serially
            return None
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
        try:
            for name in ws.environments:
                (staging / name).mkdir()
            shares = _run_shares(_Batch(runs_files, ws, staging), workers)
            if any(share.environment_found for share in shares):
                return None
            result = _resolve(ws, shares, paths, environments_dir)
            if result.ok:
                _finish(staging, shares, sorted(ws.environments))
                staging.chmod(0o755)
                os.replace(staging, root)
            return result
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def update(
    paths: Sequence[Path],
    environments_dir: Path | None,
    root: Path,
    present: Walk,
    *,
    workers: int,
    finish: Finish,
    found: Found,
) -> Result | None:
    """Check and render into the existing tree `root` in place (`incremental.supported`);
    None as for `render`, or when something in the tree is in the way of the run folders or
    indexes written (`incremental.conflicts`: the serial path refuses it or rebuilds the
    tree). Run folders are swapped in only once every file checked out."""
    prepared = _prepare(found, workers)
    if prepared is None:
        return None
    ws, runs_files = prepared
    with Updater(root, present) as updater:
        batch = _Batch(runs_files, ws, Path(updater.staging_path("")), updater)
        shares = _run_shares(batch, workers)
        if any(share.environment_found for share in shares):
            return None
        result = _resolve(ws, shares, paths, environments_dir)
        if result.ok:
            folders = [folder for share in shares for folder in share.staged]
            if conflicts(present, folders, ws.environments):
                return None
            names: dict[str, dict[str, str]] = {}
            for share in shares:
                for folder, staged in sorted(share.staged.items()):
                    if staged is None:
                        updater.changes.unchanged += 1
                    else:
                        updater.commit_or_defer(folder, share.files[folder], staged)
                    names[folder] = dict.fromkeys(share.files[folder], "")
            result.lines = finish(updater, dict(sorted(names.items())), sorted(ws.environments))
        return result


def _run_shares(batch: _Batch, workers: int) -> list[_Share]:
    _BATCH.append(batch)
    try:
        with output.fork_pool(workers) as pool:
            return list(pool.map(_work, [(k, workers) for k in range(workers)]))
    finally:
        _BATCH.pop()


def _resolve(
    ws: Workspace, shares: list[_Share], paths: Sequence[Path], environments_dir: Path | None
) -> Result:
    """The checks across files, in file order, as `load_workspace` makes them."""
    reads = sorted((read for share in shares for read in share.reads), key=lambda r: r[0])
    invalid = sorted((run for share in shares for run in share.invalid_runs), key=lambda r: r[0])
    ws.invalid_runs.extend((doc, env) for _, doc, env in invalid)
    for share in shares:
        ws.diagnostics.extend(share.diagnostics)
    if len(reads) > workspace.MAX_RUNS:
        ws.diagnostics.append(too_many_runs(paths, len(reads)))
        return Result(sort_diagnostics(ws.diagnostics), 0)
    accepted = resolve_runs(ws, [read for _, read in reads], environments_dir)
    return Result(sort_diagnostics(ws.diagnostics), len(accepted))


def _finish(staging: Path, shares: list[_Share], environments: list[str]) -> None:
    """The indexes, from the names of what the workers wrote."""
    names = {folder: dict.fromkeys(files, "") for s in shares for folder, files in s.files.items()}
    merged = merge_rendered({}, names, environments=environments, prune=True)
    loose = {path: text for path, text in merged.items() if not owner_folder(path)}
    output.write_files(staging, loose, {"", *environments})
