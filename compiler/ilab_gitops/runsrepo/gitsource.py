"""Read spec files at a git ref, and the run files deleted in its history (GitPython).

The only module of the runs-repo tooling that imports `git`; the CLI imports it inside the
commands that need it, so `ilab-gitops validate` never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import git

from ilab_gitops.load.sources import MAX_FILE_BYTES
from ilab_gitops.load.treescan import odd_name
from ilab_gitops.load.workspace import YAML_SUFFIXES

_SYMLINK_MODE = 0o120000


class GitSourceError(Exception):
    """The repository or the ref cannot be read; the message says which and why."""


def open_repo(start: Path) -> git.Repo:
    try:
        return git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitSourceError(f"{start}: not inside a git repository") from None


def resolve(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError):
        raise GitSourceError(
            f'unknown git ref "{ref}" (fetch it first, e.g. git fetch origin main)'
        ) from None


def _blobs(item: git.Blob | git.Tree) -> Iterable[git.Blob]:
    if isinstance(item, git.Blob):
        yield item
        return
    for child in item.traverse():
        if isinstance(child, git.Blob):
            yield child


def tree_files(
    commit: git.Commit,
    prefixes: Iterable[str],
    refused: list[tuple[str, str]] | None = None,
) -> list[tuple[str, bytes]]:
    """(repo path, content) of the YAML files at or under each prefix, sorted, unique.

    A prefix that does not exist at the ref yields nothing: the folder may be new in the PR.
    Files over the spec size limit are skipped (the working-tree side reports oversized
    files). Symlinks (mode 120000, whatever their name) and paths with odd names are never
    read: each goes into `refused` as (repo path, reason).
    """
    found: dict[str, bytes] = {}
    for prefix in prefixes:
        try:
            item = commit.tree / prefix if prefix else commit.tree
        except KeyError:
            continue
        for blob in _blobs(item):
            path = str(blob.path)
            reason = odd_name(path)
            if reason is None and blob.mode == _SYMLINK_MODE:
                reason = "it is a symbolic link (commit the file itself)"
            if reason is not None:
                if refused is not None:
                    refused.append((path, reason))
                continue
            if not path.endswith(YAML_SUFFIXES) or blob.size > MAX_FILE_BYTES:
                continue
            found[path] = blob.data_stream.read()
    return sorted(found.items())


def deleted_files(
    repo: git.Repo, commit: git.Commit, prefixes: Iterable[str]
) -> list[tuple[str, str, bytes]]:
    """(deleting commit, path, content before) for YAML files deleted under `prefixes`.

    Renames count as deletions (`--no-renames`): a moved file keeps its run name, which then
    exists at the ref and is never looked up here.
    """
    specs = [p or "." for p in prefixes]
    out = repo.git.log(
        "--no-renames",
        "--diff-filter=D",
        "--name-only",
        "--format=%x00%H",
        commit.hexsha,
        "--",
        *specs,
    )
    found: list[tuple[str, str, bytes]] = []
    for chunk in out.split("\x00")[1:]:
        sha, *paths = [line for line in chunk.splitlines() if line.strip()]
        parent = repo.commit(sha).parents[0] if repo.commit(sha).parents else None
        if parent is None:
            continue
        for path in paths:
            if not path.endswith(YAML_SUFFIXES):
                continue
            try:
                blob = parent.tree / path
            except KeyError:
                continue
            if isinstance(blob, git.Blob) and blob.size <= MAX_FILE_BYTES:
                found.append((sha, path, blob.data_stream.read()))
    return found
