"""Load a runs repo from disk: find spec files, parse, validate, pair runs with environments.

This is the reading edge. Everything it finds wrong becomes a diagnostic; it never raises for
bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ilab_gitops.diagnostics import Diagnostic, sort_diagnostics
from ilab_gitops.load.source_map import SourceMap
from ilab_gitops.load.sources import MAX_FILE_BYTES, Document, LoadError, parse_yaml
from ilab_gitops.load.treescan import entry_problem, escape, walk
from ilab_gitops.load.validation import (
    check_document,
    check_run_against_environment,
    unknown_environment,
)
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

YAML_SUFFIXES = (".yaml", ".yml")
#: Most runs one invocation accepts; a runs repo past this should be split.
MAX_RUNS = 20_000


@dataclass(frozen=True)
class LoadedRun:
    document: Document
    run: PipelineRun
    environment: Environment


@dataclass
class Workspace:
    """Valid runs (each with its environment), environments by name, and all diagnostics."""

    runs: list[LoadedRun] = field(default_factory=list)
    environments: dict[str, tuple[Document, Environment]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    #: Names of environments whose files have errors (reported already).
    invalid_environments: set[str] = field(default_factory=set)
    #: Runs with errors of their own, and the environment each names: an unknown one is
    #: reported with those errors (all problems of a file at once), not after they are fixed.
    invalid_runs: list[tuple[Document, str]] = field(default_factory=list)
    #: Files read whose kind is Environment, valid or not.
    environment_documents: int = 0

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def display_path(path: Path) -> str:
    """The path as users should see it in messages: relative to cwd when below it."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def refused_path(path: Path, reason: str) -> Diagnostic:
    """The diagnostic for an entry the CLI does not read; the path is printed escaped."""
    return Diagnostic(escape(display_path(path)), 1, 1, "refused-path", "", f"not read: {reason}")


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """YAML files named by `paths` (directories are searched recursively), sorted, unique.

    No symlink is followed or read, and names with control characters are refused: each
    becomes a `refused-path` error (see `treescan`).
    """
    found: set[Path] = set()
    problems: list[Diagnostic] = []
    for path in paths:
        reason = entry_problem(path)
        if reason is not None:
            problems.append(refused_path(path, reason))
        elif path.is_dir():
            tree = walk(path)
            found.update(path / rel for rel in tree.files if rel.endswith(YAML_SUFFIXES))
            problems.extend(refused_path(path / r.path, r.reason) for r in tree.refused)
        elif path.is_file():
            found.add(path)
        else:
            problems.append(
                Diagnostic(
                    escape(display_path(path)),
                    1,
                    1,
                    "no-such-file",
                    "",
                    "no such file or directory",
                )
            )
    return sorted(found), problems


def read_document(path: Path) -> Document | Diagnostic:
    shown = display_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Diagnostic(
                shown,
                1,
                1,
                "file-too-large",
                "",
                f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes",
            )
        raw = path.read_bytes()
    except OSError as err:
        return Diagnostic(shown, 1, 1, "unreadable", "", err.strerror or str(err))
    try:
        return parse_yaml(raw, shown)
    except LoadError as err:
        return err.diagnostic


#: A valid run as read: its document, its model, and its problems against its environment
#: when that was already known (then the document is `_slim`), else None (checked later).
ReadRun = tuple[Document, PipelineRun, list[Diagnostic] | None]


def _slim(document: Document) -> Document:
    """What a checked run keeps of its document: the path and where its name is (for a
    duplicate-name message), not its data and full source map (most of a run's memory)."""
    name = ("metadata", "name")
    return Document(document.path, None, SourceMap(values={name: document.source_map.locate(name)}))


def check_files(paths: Sequence[Path], ws: Workspace, *, keep: bool) -> list[ReadRun]:
    """Read and check each file on its own; environments go into `ws` as they come."""
    runs: list[ReadRun] = []
    for path in paths:
        ws.files += 1
        loaded = read_document(path)
        if isinstance(loaded, Diagnostic):
            ws.diagnostics.append(loaded)
            continue
        model, diagnostics = check_document(loaded)
        ws.diagnostics.extend(diagnostics)
        ws.environment_documents += loaded.data.get("kind") == "Environment"
        if model is None and loaded.data.get("kind") == "Environment":
            metadata = loaded.data.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            if isinstance(name, str):
                ws.invalid_environments.add(name)
        if model is None and loaded.data.get("kind") == "PipelineRun":
            env_name = _environment_named(loaded.data, diagnostics)
            if env_name is not None:
                ws.invalid_runs.append((loaded, env_name))
        if isinstance(model, Environment):
            _add_environment(ws, loaded, model)
        elif isinstance(model, PipelineRun):
            known = ws.environments.get(model.spec.environment)
            if keep or known is None:
                runs.append((loaded, model, None))
            else:  # the first definition of a name wins: this is the run's environment
                problems = check_run_against_environment(loaded, model, known[1])
                runs.append((_slim(loaded), model, problems))
    return runs


def _environment_named(data: dict[str, object], problems: list[Diagnostic]) -> str | None:
    """spec.environment of an invalid run, when it is a name without problems of its own."""
    spec = data.get("spec")
    name = spec.get("environment") if isinstance(spec, dict) else None
    if not isinstance(name, str) or any(p.field == "spec.environment" for p in problems):
        return None
    return name


def _duplicate(document: Document, what: str, first: str) -> Diagnostic:
    """`what` (kind and name) is defined again in `document`, first in `first`."""
    pos = document.source_map.locate(("metadata", "name"))
    return Diagnostic(
        document.path,
        pos.line,
        pos.column,
        "duplicate-name",
        "metadata.name",
        f"{what} is also defined in {first}",
    )


def _add_environment(ws: Workspace, document: Document, env: Environment) -> None:
    name = env.metadata.name
    if name in ws.environments:
        first = ws.environments[name][0]
        if first.path == document.path:
            return
        ws.diagnostics.append(_duplicate(document, f'environment "{name}"', first.path))
        return
    ws.environments[name] = (document, env)


def too_many_runs(paths: Sequence[Path], count: int) -> Diagnostic:
    return Diagnostic(
        display_path(paths[0]),
        1,
        1,
        "too-many-runs",
        "",
        f"{count} runs in one invocation; the limit is {MAX_RUNS}",
    )


@dataclass(frozen=True)
class Found:
    """The YAML files a command reads (sorted), those of the environments folder, and the
    entries that cannot be read (refused or missing), found by one walk."""

    files: list[Path]
    environment_files: list[Path]
    diagnostics: list[Diagnostic]

    @property
    def run_files(self) -> list[Path]:
        environments = set(self.environment_files)
        return [path for path in self.files if path not in environments]


def find_files(paths: Sequence[Path], environments_dir: Path | None) -> Found:
    """Every YAML file under `paths` and `environments_dir` (when it exists)."""
    files, problems = discover(paths)
    diagnostics = list(problems)
    env_files: list[Path] = []
    if environments_dir is not None and (
        environments_dir.is_dir() or environments_dir.is_symlink()
    ):
        env_files, env_problems = discover([environments_dir])
        files = sorted(set(files) | set(env_files))
        diagnostics.extend(p for p in env_problems if p not in problems)
    return Found(files, env_files, diagnostics)


@dataclass(frozen=True)
class RunRead:
    """A valid run as read from its file, before the checks across files."""

    document: Document  # the whole document, or `_slim` once `checked`
    name: str
    environment: str
    #: Its problems against its environment, when that was known as it was read.
    checked: list[Diagnostic] | None
    run: PipelineRun | None  # None where the run was compiled elsewhere (emit.batch)


def resolve_runs(
    ws: Workspace, reads: Sequence[RunRead], environments_dir: Path | None
) -> list[RunRead]:
    """The checks across files, in file order: duplicate names, unknown or invalid
    environments, each run against its environment; the runs that pass."""
    accepted: list[RunRead] = []
    seen: dict[str, Document] = {}
    where = display_path(environments_dir) if environments_dir else "the given paths"
    for read in reads:
        document, name, env_name = read.document, read.name, read.environment
        if name in seen:
            ws.diagnostics.append(_duplicate(document, f'run "{name}"', seen[name].path))
            continue
        seen[name] = document
        if env_name in ws.invalid_environments and env_name not in ws.environments:
            continue  # its own errors are reported; the run is checked once it is fixed
        if env_name not in ws.environments:
            ws.diagnostics.append(unknown_environment(document, env_name, ws.environments, where))
            continue
        problems = read.checked
        if problems is None:
            assert read.run is not None
            env = ws.environments[env_name][1]
            problems = check_run_against_environment(document, read.run, env)
        ws.diagnostics.extend(problems)
        if not any(d.severity == "error" for d in problems):
            accepted.append(read)
    for document, env_name in ws.invalid_runs:
        if env_name not in ws.environments and env_name not in ws.invalid_environments:
            ws.diagnostics.append(unknown_environment(document, env_name, ws.environments, where))
    return accepted


def load_workspace(
    paths: Sequence[Path],
    environments_dir: Path | None,
    *,
    keep_documents: bool = True,
    found: Found | None = None,
) -> Workspace:
    """Validate everything under `paths`; resolve each run's environment.

    Environments come from the given paths and from `environments_dir` (when it exists).
    Without `keep_documents`, a valid run keeps only its model (render: memory then grows
    by a run's model, not by its parsed YAML and source map). `found`: the files, when the
    caller has walked the paths already.
    """
    ws = Workspace()
    found = found or find_files(paths, environments_dir)
    ws.diagnostics.extend(found.diagnostics)
    runs = check_files(found.files, ws, keep=keep_documents)
    if len(runs) > MAX_RUNS:
        ws.diagnostics.append(too_many_runs(paths, len(runs)))
        return ws
    reads = [
        RunRead(doc, run.metadata.name, run.spec.environment, checked, run)
        for doc, run, checked in runs
    ]
    for read in resolve_runs(ws, reads, environments_dir):
        assert read.run is not None
        ws.runs.append(LoadedRun(read.document, read.run, ws.environments[read.environment][1]))
    ws.diagnostics = sort_diagnostics(ws.diagnostics)
    return ws
