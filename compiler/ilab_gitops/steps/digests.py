"""sha256 of files and folder trees, read in fixed-size chunks so memory stays flat."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from ilab_gitops.steps.markers import MARKER_NAME

CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_files(root: Path) -> list[str]:
    """Regular files under `root` (symlinks not followed), as sorted POSIX relative paths."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        for name in files:
            path = base / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            if rel != MARKER_NAME:
                found.append(rel)
    return sorted(found)


def tree_sha256(root: Path, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """sha256 of every regular file under `root`; `known` digests are trusted, not re-read."""
    known = known or {}
    return {rel: known.get(rel) or file_sha256(root / rel) for rel in tree_files(root)}
