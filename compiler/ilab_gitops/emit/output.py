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
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilab_gitops.load.treescan import Refused, Walk, walk

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


#: Largest file read from `rendered/`; a rendered step file is a few tens of KiB.
MAX_RENDERED_BYTES = 8 * 1024 * 1024


@dataclass
class RenderedTree:
    """What is on disk under `rendered/`, read without following a single link.

    `files` holds the bytes of every regular file with a plain name (up to
    `MAX_RENDERED_BYTES`); `refused` everything else (symlinks, odd names, special files,
    oversized files), which is never read; `empty_dirs` folders holding nothing.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    refused: list[Refused] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)


def survey(root: Path) -> Walk:
    """The names under `root`, nothing read: refused as `scan_tree` refuses (the root as a
    link, links, odd names, special and oversized files)."""
    if os.path.islink(root):
        return Walk(refused=[Refused(".", "it is a symbolic link (commit the folder itself)")])
    if not root.is_dir():
        return Walk()
    found = walk(root)
    big = [rel for rel in found.files if found.sizes[rel] > MAX_RENDERED_BYTES]
    if big:
        found.files = [rel for rel in found.files if found.sizes[rel] <= MAX_RENDERED_BYTES]
        found.refused.extend(
            Refused(rel, f"it is larger than {MAX_RENDERED_BYTES} bytes") for rel in big
        )
        found.refused.sort(key=lambda r: r.path)
    return found


def scan_tree(root: Path) -> RenderedTree:
    """The tree under `root` (empty when `root` is missing; refused when it is a link)."""
    found = survey(root)
    tree = RenderedTree(refused=list(found.refused), empty_dirs=list(found.empty_dirs))
    for rel in found.files:
        try:
            fd = os.open(root / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:  # replaced by a link since the walk, or unreadable
            tree.refused.append(Refused(rel, f"it cannot be read ({err.strerror})"))
            continue
        with os.fdopen(fd, "rb") as handle:
            tree.files[rel] = handle.read(MAX_RENDERED_BYTES + 1)
    tree.refused.sort(key=lambda r: r.path)
    return tree


def read_tree(root: Path) -> dict[str, str]:
    """The UTF-8 files under `root` as {relative posix path: text}; empty when missing.

    Links, odd names and non-UTF-8 files are left out (see `scan_tree`).
    """
    out: dict[str, str] = {}
    for rel, data in scan_tree(root).files.items():
        with contextlib.suppress(UnicodeDecodeError):
            out[rel] = data.decode("utf-8")
    return out


@functools.cache
def _libc() -> Any:
    """The C library, looked up once (`find_library` runs a subprocess); None without one."""
    libc_name = ctypes.util.find_library("c")
    return ctypes.CDLL(libc_name, use_errno=True) if libc_name else None


def _renameat2() -> Any:
    return getattr(_libc(), "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def exchange(a: str | Path, b: str | Path) -> bool:
    """Atomically swap two paths; False when the system cannot."""
    return _exchange(Path(a), Path(b))


def exchange_supported(root: Path) -> bool:
    """Whether two entries beside `root` can be exchanged atomically (tried on two empty
    folders: the C library and the file system must both support it). The probe is named as
    a staging folder of `root`, so the next run removes it if this one is killed."""
    probe = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-probe-", dir=root.absolute().parent))
    try:
        (probe / "a").mkdir()
        (probe / "b").mkdir()
        (probe / "a" / "x").mkdir()
        return _exchange(probe / "a", probe / "b") and (probe / "b" / "x").is_dir()
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def recover(root: Path) -> None:
    """Remove leftovers of an earlier, interrupted run (see `_recover`)."""
    _recover(root)


def _recover(root: Path) -> None:
    """Finish an interrupted two-rename swap from an earlier run, and remove staging folders.

    Only a real folder (`lstat`) is moved back into place or deleted; anything else of those
    names (a link a PR committed, a file) is unlinked itself: never followed, and nothing
    outside the folder holding `root` is touched."""
    for leftover in sorted(root.parent.glob(f".{root.name}.old-*")):
        if not _is_folder(leftover):
            _unlink(leftover)
        elif root.exists():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.replace(leftover, root)
    for leftover in root.parent.glob(f".{root.name}.new-*"):
        if _is_folder(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            _unlink(leftover)


def _is_folder(path: Path) -> bool:
    """Whether `path` itself (not what a link points to) is a folder."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):  # as `rmtree(ignore_errors=True)` for a folder
        os.unlink(path)


def write_files(base: Path, files: Mapping[str, str | bytes], made: set[str] | None = None) -> None:
    """Write `files` below the directory `base` (`made`: the folders below it that exist
    already, updated; by default none).

    Plain `os.open`/`os.write` and one `mkdir` per new directory: for thousands of small
    files, buffered text files and `makedirs(exist_ok=True)` cost several times more.
    """
    made = {""} if made is None else made
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    root = os.fspath(base)
    for rel, text in files.items():
        make_parents(root, rel, made)
        fd = os.open(os.path.join(root, rel), flags, 0o644)
        try:
            data = text.encode("utf-8") if isinstance(text, str) else text
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)


def make_parents(root: str, rel: str, made: set[str]) -> None:
    """Create the folders of `rel` below `root` that are not in `made` (and add them)."""
    folder = rel.rpartition("/")[0]
    if folder in made:
        return
    parts = folder.split("/")
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        if sub not in made:
            os.mkdir(os.path.join(root, sub), 0o755)
            made.add(sub)


def fork_pool(workers: int) -> Any:
    """A pool of `workers` forked processes that inherit the batch being rendered; each
    drops the write lock it inherited and dies with this process (`worker_init`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _libc()  # once here, so that no worker runs `find_library`
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=worker_init,
        initargs=(os.getpid(),),
    )


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder that holds `root` (one writer at a time); the
    kernel drops it if the process dies."""
    parent = root.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    _LOCK_FDS.add(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        _LOCK_FDS.discard(fd)
        os.close(fd)


#: Lock descriptors this process holds (`locked`); forked workers close their copies.
_LOCK_FDS: set[int] = set()
_PR_SET_PDEATHSIG = 1


def worker_init(parent: int) -> None:
    """In a forked worker: drop the inherited copies of the write lock (else a killed parent
    leaves the lock held by its orphans and the next render waits forever) and die with the
    parent (Linux `PR_SET_PDEATHSIG`)."""
    import signal

    for fd in list(_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _LOCK_FDS.clear()
    prctl = getattr(_libc(), "prctl", None)  # looked up by the parent, before the fork
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Replace the directory `root` with exactly `files`, atomically."""
    write_tree_stream(root, [files])


def write_tree_stream(root: Path, batches: Iterable[Mapping[str, str | bytes]]) -> None:
    """Replace the directory `root` with exactly the files of all `batches` (distinct paths),
    atomically; each batch is written as it comes, so only one is held in memory."""
    root = root.absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root):
        _swap_in(root, batches)


def _swap_in(root: Path, batches: Iterable[Mapping[str, str | bytes]]) -> None:
    _recover(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
    try:
        made = {""}
        for files in batches:
            write_files(staging, files, made)
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


@dataclass(frozen=True)
class Difference:
    """One path where the tree on disk is not what the compiler writes.

    `foreign` differences are content the compiler never produces (extra files or folders,
    binary or non-UTF-8 files, links, odd names): tampering or leftovers, exit 2. The others
    (a file missing, or holding other text) are what a stale render looks like, exit 1.
    """

    path: str
    message: str
    foreign: bool


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def tree_differences(actual: RenderedTree, expected: Mapping[str, str]) -> list[Difference]:
    """Every difference between the whole tree on disk and `expected`, sorted by path."""
    out = [Difference(r.path, f"not read: {r.reason}", foreign=True) for r in actual.refused]
    for path, data in actual.files.items():
        if path not in expected:
            kind = "file" if _is_text(data) else "binary or non-UTF-8 file"
            out.append(Difference(path, f"{kind} not written by the compiler from the specs", True))
        elif not _is_text(data):
            out.append(Difference(path, "binary or non-UTF-8 content", foreign=True))
        elif data != expected[path].encode("utf-8"):
            out.append(Difference(path, "out of date", foreign=False))
    refused = {r.path for r in actual.refused}
    out.extend(
        Difference(path, "missing", foreign=False)
        for path in expected
        if path not in actual.files and path not in refused
    )
    folders = {p.rsplit("/", 1)[0] for p in expected if "/" in p}
    parents = {"/".join(f.split("/")[:i]) for f in folders for i in range(1, f.count("/") + 2)}
    out.extend(
        Difference(path, "empty folder not written by the compiler", foreign=True)
        for path in actual.empty_dirs
        if path not in parents
    )
    return sorted(out, key=lambda d: d.path)
