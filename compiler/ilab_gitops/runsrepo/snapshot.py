"""One side of a diff: the runs of a runs repo, by name, each with its environment.

The working tree is read through `load_workspace` (the same validation `validate` and `render`
apply); a git ref is read from blobs, with the same parser and models. Paths are kept twice:
relative to the repository root (to match files across the two sides) and as shown to users
(relative to the current directory, like every other message of the CLI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.load.sources import Document, LoadError, parse_yaml
from ilab_gitops.load.treescan import escape
from ilab_gitops.load.validation import check_document
from ilab_gitops.load.workspace import Workspace
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun


@dataclass(frozen=True)
class RepoPaths:
    """Converts between repo-relative posix paths and the paths users see."""

    root: Path  # resolved repository root
    cwd: Path  # resolved current directory

    @classmethod
    def at(cls, root: Path, cwd: Path | None = None) -> RepoPaths:
        return cls(Path(os.path.realpath(root)), Path(os.path.realpath(cwd or Path.cwd())))

    def to_repo(self, path: str | Path) -> str:
        """`runs/a.yaml` for a path given on the command line or shown in a message."""
        absolute = Path(os.path.realpath(self.cwd / path))
        rel = absolute.relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    def shown(self, repo_path: str) -> str:
        absolute = self.root / repo_path
        try:
            return absolute.relative_to(self.cwd).as_posix()
        except ValueError:
            return os.path.relpath(absolute, self.cwd).replace(os.sep, "/")


@dataclass(frozen=True)
class SnapRun:
    """A valid run on one side of the diff."""

    path: str  # repo-relative
    document: Document  # document.path is the path shown in messages
    run: PipelineRun
    environment: Environment | None  # None: its environment does not exist on that side
    env_document: Document | None = None

    @property
    def name(self) -> str:
        return self.run.metadata.name


@dataclass(frozen=True)
class SnapEnv:
    """A valid environment on one side of the diff."""

    path: str  # repo-relative
    document: Document
    environment: Environment

    @property
    def name(self) -> str:
        return self.environment.metadata.name


@dataclass
class Snapshot:
    """Runs and environments by name, YAML files seen (repo paths), files that did not validate."""

    label: str
    runs: dict[str, SnapRun] = field(default_factory=dict)
    environments: dict[str, SnapEnv] = field(default_factory=dict)
    broken_environments: set[str] = field(default_factory=set)  # names whose files have errors
    files: set[str] = field(default_factory=set)
    invalid: set[str] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def run_at(self, repo_path: str) -> SnapRun | None:
        for snap in self.runs.values():
            if snap.path == repo_path:
                return snap
        return None


def from_workspace(ws: Workspace, files: Iterable[str], paths: RepoPaths) -> Snapshot:
    """The working tree's side: `files` are the repo paths of every YAML file discovered."""
    snap = Snapshot(label="working tree", files=set(files), diagnostics=list(ws.diagnostics))
    for d in ws.diagnostics:
        if d.severity == "error":
            with contextlib.suppress(ValueError):  # a file outside the repository
                snap.invalid.add(paths.to_repo(d.path))
    snap.invalid &= snap.files
    snap.broken_environments = set(ws.invalid_environments)
    for name, (document, env) in ws.environments.items():
        with contextlib.suppress(ValueError):  # a profile outside the repository
            snap.environments[name] = SnapEnv(paths.to_repo(document.path), document, env)
    for loaded in ws.runs:
        env_doc = ws.environments[loaded.run.spec.environment][0]
        repo_path = paths.to_repo(loaded.document.path)
        snap.runs[loaded.run.metadata.name] = SnapRun(
            repo_path, loaded.document, loaded.run, loaded.environment, env_doc
        )
    return snap


def _parse(
    raw: bytes, repo_path: str, paths: RepoPaths
) -> tuple[object, Document | None, list[Diagnostic]]:
    try:
        document = parse_yaml(raw, paths.shown(repo_path))
    except LoadError as err:
        return None, None, [err.diagnostic]
    model, diagnostics = check_document(document)
    return model, document, diagnostics


def from_blobs(
    label: str,
    run_blobs: Iterable[tuple[str, bytes]],
    env_blobs: Iterable[tuple[str, bytes]],
    paths: RepoPaths,
    refused: Iterable[tuple[str, str]] = (),
) -> Snapshot:
    """A git ref's side, from (repo path, content) pairs.

    Problems on this side are reported as warnings naming the ref: the base branch is what it
    is, and a PR should not fail for a file it did not touch. `refused` entries (symlinks,
    odd names: see `gitsource.tree_files`) stay errors: such a tree is never read.
    """
    snap = Snapshot(label=label)
    environments: dict[str, tuple[Document, Environment]] = {}
    candidates: list[tuple[str, Document, PipelineRun]] = []
    problems: list[Diagnostic] = []
    for source, blobs in (("runs", run_blobs), ("environments", env_blobs)):
        for repo_path, raw in blobs:
            if source == "runs":
                snap.files.add(repo_path)
            model, document, diagnostics = _parse(raw, repo_path, paths)
            problems.extend(diagnostics)
            if diagnostics:
                snap.invalid.add(repo_path)
            if document is None:
                continue
            meta = document.data.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if model is None and document.data.get("kind") == "Environment" and name:
                snap.broken_environments.add(str(name))
            if isinstance(model, Environment):
                environments.setdefault(model.metadata.name, (document, model))
                if model.metadata.name not in snap.environments:
                    snap.environments[model.metadata.name] = SnapEnv(repo_path, document, model)
            elif isinstance(model, PipelineRun) and source == "runs":
                candidates.append((repo_path, document, model))
    for repo_path, document, run in sorted(candidates, key=lambda c: c[0]):
        if run.metadata.name in snap.runs:
            snap.invalid.add(repo_path)
            continue
        env = environments.get(run.spec.environment)
        snap.runs[run.metadata.name] = SnapRun(
            repo_path, document, run, env[1] if env else None, env[0] if env else None
        )
    snap.diagnostics = [
        dataclasses.replace(d, severity="warning", message=f"{d.message} (in {label})")
        for d in problems
    ]
    snap.diagnostics.extend(
        Diagnostic(
            escape(paths.shown(repo_path)),
            1,
            1,
            "refused-path",
            "",
            f"not read: {reason} (in {escape(label)})",
        )
        for repo_path, reason in refused
    )
    return snap
