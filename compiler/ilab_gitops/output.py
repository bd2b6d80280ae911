"""Write a rendered tree atomically: readers see the old tree or the new one, never a mix.

The new tree is built completely in a temporary sibling directory, then swapped in. On Linux
the swap is one `renameat2(RENAME_EXCHANGE)` call; elsewhere two renames, and a crash between
them leaves `<out>.old-*` beside the target, which the next run recovers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def read_tree(root: Path) -> dict[str, str]:
    """All files under `root` as {relative posix path: text}; empty when `root` is missing."""
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def _recover(root: Path) -> None:
    """Finish an interrupted two-rename swap from an earlier run."""
    for leftover in root.parent.glob(f".{root.name}.old-*"):
        if root.exists():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.replace(leftover, root)
    for leftover in root.parent.glob(f".{root.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _write_files(base: Path, files: Mapping[str, str]) -> None:
    """Write `files` below the empty directory `base`.

    Plain `os.open`/`os.write` and one `mkdir` per new directory: for thousands of small
    files, buffered text files and `makedirs(exist_ok=True)` cost several times more.
    """
    made = {""}
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    root = os.fspath(base)
    for rel, text in files.items():
        folder = rel.rpartition("/")[0]
        if folder not in made:
            parts = folder.split("/")
            for depth in range(1, len(parts) + 1):
                sub = "/".join(parts[:depth])
                if sub not in made:
                    os.mkdir(os.path.join(root, sub), 0o755)
                    made.add(sub)
        fd = os.open(os.path.join(root, rel), flags, 0o644)
        try:
            data = text.encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder that holds `root` (one writer at a time); the
    kernel drops it if the process dies."""
    parent = root.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    """Replace the directory `root` with exactly `files`, atomically."""
    root = root.absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root):
        _swap_in(root, files)


def _swap_in(root: Path, files: Mapping[str, str]) -> None:
    _recover(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
    try:
        _write_files(staging, files)
        os.chmod(staging, 0o755)
        if not root.exists():
            os.replace(staging, root)
            return
        if _exchange(staging, root):
            shutil.rmtree(staging)  # now holds the old tree
            return
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        old.rmdir()
        os.replace(root, old)
        os.replace(staging, root)
        shutil.rmtree(old)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise


def tree_differences(actual: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """Paths (relative) that differ between a tree read by `read_tree` and `expected`."""
    changed = [p for p in expected if actual.get(p) != expected[p]]
    extra = [p for p in actual if p not in expected]
    return sorted(changed + extra)
