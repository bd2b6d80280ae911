"""Re-render in place: only run folders whose files change are rewritten, each swapped atomically.

The render-on-merge job re-renders a whole runs repo after a merge that usually changed one
run. Rebuilding and swapping the whole tree recreates every file and folder, which on a
journal-less ext4 disk costs more than compiling. Here each run folder is compared with what
the compiler writes; a folder that differs is built beside the tree (unchanged files are hard
links to the old ones, so they keep their inode and mtime) and exchanged with the old folder in
one `renameat2(RENAME_EXCHANGE)`. Killed at any point, every run folder is its old or its new
version, and leftovers sit in `.<root>.new-*` beside the tree, where the next run removes them.
Loose files (the kustomization indexes) are replaced with `os.replace`, after the run folders
they list exist and before the run folders they drop are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ilab_gitops.emit import output
from ilab_gitops.emit.render import FLUX_FOLDER, INDEX_FILE, owner_folder
from ilab_gitops.load.treescan import Walk

#: Mode bits a kept file must not have: any execute bit (git tracks it, and the compiler
#: writes 0644) or setuid, setgid, sticky. Read and write bits are the checkout's umask.
_NOT_KEPT = 0o7111
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Changes:
    """What an update did, for the summary line and the tests."""

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


def supported(
    root: Path, present: Walk, folders: Iterable[str] = (), environments: Iterable[str] = ()
) -> bool:
    """Whether `root` can be updated in place: an existing folder (not a link) holding only
    regular files with plain names, nothing in the way of the run `folders` and
    `environments` rendered (`conflicts`), on a system with `renameat2`. Otherwise the whole
    tree is rebuilt and swapped (`output.write_tree`), which also clears anything refused."""
    if os.path.islink(root) or not root.is_dir() or present.refused:
        return False
    if conflicts(present, folders, environments):
        return False
    return output.exchange_supported(root)


def conflicts(
    present: Walk, folders: Iterable[str] = (), environments: Iterable[str] = ()
) -> list[str]:
    """Paths in the way of what this render writes: a file where it makes a folder (the
    environment or run folder of a run in `folders`, `<environment>/<run>`, or an
    environment of `environments`), or a folder at or below the name of an index file it
    writes (the root one, or that of such an environment). In place they would block a
    rename; only a whole rebuild (`--prune`) replaces them. Anything else (a README at the
    top, notes in an environment folder, another run folder) is kept as it is."""
    runs = set(folders)
    envs = set(environments) | {folder.split("/", 1)[0] for folder in runs}
    found = []
    for path in [*present.files, *present.empty_dirs]:
        parts = path.split("/")
        is_file = path in present.sizes
        if parts[0] == INDEX_FILE:
            if len(parts) > 1 or not is_file:
                found.append(path)  # a folder where the root index goes
        elif parts[0] not in envs:
            continue
        elif len(parts) == 1:
            if is_file:
                found.append(path)  # a file where an environment folder goes
        elif parts[1] == INDEX_FILE:
            if len(parts) > 2 or not is_file:
                found.append(path)  # a folder where an environment's index goes
        elif len(parts) == 2 and is_file and path in runs:
            found.append(path)  # a file where a run folder goes
    return found


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, _FLAGS, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _read(path: str, limit: int) -> bytes | None:
    """The file's bytes when it is a regular file without execute or special mode bits
    (else None: it is rewritten with mode 0644, as a whole rebuild would). Other read and
    write bits are kept: a checkout under umask 002 or 077 is not rewritten every time."""
    try:
        fd = os.open(path, _READ)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_mode & _NOT_KEPT:
            return None
        try:
            return handle.read(limit + 1)
        except OSError:
            return None


class Updater:
    """One in-place update of `root`; use as a context manager (holds the write lock, removes
    its staging folder at the end, whatever happens)."""

    def __init__(self, root: Path, present: Walk) -> None:
        self.root = root.absolute()
        self.present = present
        self.changes = Changes()
        self._by_folder: dict[str, list[str]] = {}
        for path in present.files:
            self._by_folder.setdefault(owner_folder(path), []).append(path)
        self._stage = ""
        self._count = 0
        self._deferred: list[tuple[str, str]] = []
        self._lock: contextlib.ExitStack | None = None

    def __enter__(self) -> Updater:
        stack = contextlib.ExitStack()
        stack.enter_context(output.locked(self.root))
        self._lock = stack
        output.recover(self.root)
        prefix = f".{self.root.name}.new-"
        self._stage = tempfile.mkdtemp(prefix=prefix, dir=self.root.parent)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            shutil.rmtree(self._stage, ignore_errors=True)
        finally:
            if self._lock is not None:
                self._lock.close()

    def _staged(self) -> str:
        self._count += 1
        return os.path.join(self._stage, str(self._count))

    def put_run(self, folder: str, files: Mapping[str, str]) -> None:
        """Make `root/folder` hold exactly `files` (paths relative to the folder)."""
        staged = self._staged()
        if self.stage_run(folder, files, staged):
            self.commit_or_defer(folder, files, staged)
        else:
            self.changes.unchanged += 1

    def commit_or_defer(self, folder: str, files: Iterable[str], staged: str) -> None:
        """Swap a staged run folder in now, or, when it drops its `flux/` folder (which its
        environment's index lists), only after the indexes are rewritten (`commit_deferred`):
        an index never lists a folder that is not there."""
        had_flux = any(
            p.startswith(f"{folder}/{FLUX_FOLDER}/") for p in self._by_folder.get(folder, ())
        )
        if had_flux and not any(rel.startswith(f"{FLUX_FOLDER}/") for rel in files):
            self._deferred.append((folder, staged))
        else:
            self.commit_run(folder, staged)

    def commit_deferred(self) -> None:
        """The run folders held back by `commit_or_defer`, once the indexes are written."""
        for folder, staged in self._deferred:
            self.commit_run(folder, staged)
        self._deferred.clear()

    def staging_path(self, name: str) -> str:
        """A path in the staging folder for a worker's run folder (`name` unique to it)."""
        return os.path.join(self._stage, name)

    def stage_run(self, folder: str, files: Mapping[str, str], staged: str) -> bool:
        """Build the new `folder` at `staged` unless the tree holds exactly `files` there
        already (False: nothing to do). Unchanged files are hard links to the old ones.
        Safe in forked workers: it reads the tree and writes only below `staged`."""
        target = os.path.join(self.root, folder)
        old = {p[len(folder) + 1 :] for p in self._by_folder.get(folder, ())}
        same: set[str] = set()
        encoded = {rel: text.encode("utf-8") for rel, text in files.items()}
        for rel, data in encoded.items():
            if (
                rel in old
                and self.present.sizes.get(f"{folder}/{rel}") == len(data)
                and _read(os.path.join(target, rel), len(data)) == data
            ):
                same.add(rel)
        if old == same and len(same) == len(encoded):
            return False
        made = {""}
        os.mkdir(staged, 0o755)
        for rel, data in sorted(encoded.items()):
            output.make_parents(staged, rel, made)
            if rel in same:
                os.link(os.path.join(target, rel), os.path.join(staged, rel), follow_symlinks=False)
            else:
                _write(os.path.join(staged, rel), data)
        return True

    def commit_run(self, folder: str, staged: str) -> None:
        """Swap the folder built by `stage_run` into place, in one exchange or rename."""
        target = os.path.join(self.root, folder)
        if folder in self._by_folder or os.path.isdir(target):
            if not output.exchange(staged, target):
                raise OSError(f"could not exchange {target} with its new version")
            shutil.rmtree(staged)  # now the old folder
        else:
            os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            os.rename(staged, target)
        self.changes.written.append(folder)

    def put_file(self, path: str, text: str) -> None:
        """Replace one loose file (an index) when its content differs."""
        data = text.encode("utf-8")
        target = os.path.join(self.root, path)
        if self.present.sizes.get(path) == len(data) and _read(target, len(data)) == data:
            return
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        staged = self._staged()
        _write(staged, data)
        os.replace(staged, target)

    def remove(self, path: str) -> None:
        """Remove a run folder (moved out in one rename, then deleted) or a loose file."""
        target = os.path.join(self.root, path)
        if os.path.isdir(target) and not os.path.islink(target):
            staged = self._staged()
            os.rename(target, staged)
            shutil.rmtree(staged)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        self.changes.removed.append(path)

    def remove_empty_folders(self, keep: set[str]) -> None:
        """Drop environment folders left empty (not those in `keep`), and empty folders the
        walk found, deepest first."""
        candidates = set(self.present.empty_dirs)
        candidates.update(p.split("/", 1)[0] for p in self.present.files if "/" in p)
        for folder in sorted(candidates, key=lambda p: (-p.count("/"), p)):
            if folder in keep:
                continue
            with contextlib.suppress(OSError):  # not empty: it still holds something
                os.rmdir(os.path.join(self.root, folder))
