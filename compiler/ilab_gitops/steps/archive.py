"""Safe, streaming extraction of a tar archive (any compression tarfile detects).

Why not `tarfile.extractall(filter="data")`: the images run Python 3.11, whose filter had
bypasses (CVE-2025-4517 and friends: symlink-then-hardlink, long realpaths) fixed only in
3.11.13, and it enforces no size or count limits. The rules here are stricter and simple:

- names: relative, no `..`, no NUL; every parent on disk must be a real folder, never a link;
- regular files are created with O_EXCL|O_NOFOLLOW (a duplicate member is an error) and
  written in chunks while counting bytes and hashing;
- hard links may only name a regular file extracted earlier;
- symlinks are created after everything else, then each must resolve (realpath, following
  chains) to an existing path inside the destination;
- devices, fifos and sparse files are refused; sizes, member counts and path depth are
  bounded;
- extended headers (GNU long names, PAX records) are size-checked before tarfile reads them:
  tarfile buffers such a header whole, so a 500 KB gzip holding a 1.6 GB "long name" would
  otherwise cost 1.6 GB of memory before any rule here ran. Their number in a row and their
  total are bounded too, and tarfile's member list is emptied as we go (it only grows in
  stream mode), so memory stays flat whatever the archive says.

The archive is read once, in order (`r|*`), so it can come straight off a network stream.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ilab_gitops.steps.runtime import StepError

GiB = 1024**3
CHUNK = 1024 * 1024


class ArchiveError(StepError):
    """The archive is unreadable or breaks a safety rule."""


@dataclass(frozen=True)
class Limits:
    max_total_bytes: int = 512 * GiB
    max_file_bytes: int = 128 * GiB
    max_members: int = 500_000
    max_name_bytes: int = 4096
    max_depth: int = 64
    max_header_bytes: int = 1024 * 1024
    max_all_header_bytes: int = 64 * 1024 * 1024
    max_headers_in_a_row: int = 8


@dataclass
class Extracted:
    """What came out: regular files with their sha256, and totals for the marker."""

    files: dict[str, str] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    members: int = 0
    total_bytes: int = 0


def member_parts(name: str) -> tuple[str, ...]:
    """Normalized path components of a member name, or ArchiveError if it could escape."""
    if "\x00" in name:
        raise ArchiveError(f"member {name!r}: NUL in name")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveError(f"member {name!r}: absolute path")
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"member {name!r}: '..' in path")
    return parts


_LONG_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class _HeaderBudget:
    """Per-archive counters for extended headers, kept on the TarFile being read."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.total = 0


def _guarded_tarinfo(limits: Limits) -> type[tarfile.TarInfo]:
    """A TarInfo whose extended headers are checked before tarfile buffers their data.

    `_proc_member` is where tarfile dispatches on the header type (CPython 3.8 to 3.14); the
    long-name, sparse and PAX handlers it calls read `size` bytes in one go, and chain to
    the next header recursively.
    """

    class GuardedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tar: tarfile.TarFile) -> Any:
            budget: _HeaderBudget = getattr(tar, "_ilab_budget", None) or _HeaderBudget()
            setattr(tar, "_ilab_budget", budget)  # noqa: B010 - tarfile has no slot for it
            if self.type == tarfile.GNUTYPE_SPARSE:
                raise ArchiveError(f"member {self.name!r}: sparse files are not supported")
            if self.type in _LONG_TYPES or self.type in _PAX_TYPES:
                kind = "GNU long name" if self.type in _LONG_TYPES else "PAX"
                limit = (
                    limits.max_name_bytes + 1
                    if self.type in _LONG_TYPES
                    else limits.max_header_bytes
                )
                if self.size > limit:
                    raise ArchiveError(
                        f"{kind} header of {self.size} bytes exceeds the limit of {limit} "
                        "(refused before reading it)"
                    )
                budget.in_a_row += 1
                budget.total += self.size
                if budget.in_a_row > limits.max_headers_in_a_row:
                    raise ArchiveError(
                        f"more than {limits.max_headers_in_a_row} extended headers in a row"
                    )
                if budget.total > limits.max_all_header_bytes:
                    raise ArchiveError(
                        f"extended headers exceed {limits.max_all_header_bytes} bytes in all"
                    )
            else:
                budget.in_a_row = 0
            return super()._proc_member(tar)  # type: ignore[misc]

    return GuardedTarInfo


class _Extractor:
    def __init__(self, dest: Path, limits: Limits) -> None:
        self.dest = dest
        self.real_dest = os.path.realpath(dest)
        self.limits = limits
        self.result = Extracted()
        self.pending_links: list[tuple[tuple[str, ...], str]] = []

    def ensure_dir(self, parts: tuple[str, ...], member: str) -> Path:
        current = self.dest
        for part in parts:
            current = current / part
            try:
                info = current.lstat()
            except FileNotFoundError:
                current.mkdir(mode=0o755)
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise ArchiveError(f"member {member!r}: {part!r} on its path is not a folder")
        return current

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.result.members += 1
        if self.result.members > self.limits.max_members:
            raise ArchiveError(f"more than {self.limits.max_members} members")
        if len(member.name.encode()) > self.limits.max_name_bytes:
            raise ArchiveError(f"member name longer than {self.limits.max_name_bytes} bytes")
        parts = member_parts(member.name)
        if len(parts) > self.limits.max_depth:
            raise ArchiveError(
                f"member {member.name[:200]!r}: deeper than {self.limits.max_depth} folders"
            )
        if not parts:
            if member.isdir():
                return
            raise ArchiveError(f"member {member.name!r}: empty name")
        if member.isdir():
            self.ensure_dir(parts, member.name)
        elif member.issparse():
            raise ArchiveError(f"member {member.name!r}: sparse files are not supported")
        elif member.isreg():
            self.write_file(tar, member, parts)
        elif member.islnk():
            self.hard_link(member, parts)
        elif member.issym():
            self.queue_symlink(member, parts)
        else:
            if member.ischr() or member.isblk():
                kind = "device file"
            elif member.isfifo():
                kind = "fifo/special file"
            else:
                kind = f"member type {member.type!r}"
            raise ArchiveError(f"member {member.name!r}: {kind} not allowed")

    def write_file(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: tuple[str, ...]
    ) -> None:
        if member.size > self.limits.max_file_bytes:
            raise ArchiveError(
                f"member {member.name!r}: {member.size} bytes exceeds the per-file limit "
                f"of {self.limits.max_file_bytes}"
            )
        if self.result.total_bytes + member.size > self.limits.max_total_bytes:
            raise ArchiveError(f"archive expands beyond {self.limits.max_total_bytes} bytes")
        parent = self.ensure_dir(parts[:-1], member.name)
        mode = 0o755 if member.mode & 0o111 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parent / parts[-1], flags, mode)
        except FileExistsError:
            raise ArchiveError(f"member {member.name!r}: duplicate path") from None
        source = tar.extractfile(member)
        if source is None:  # pragma: no cover - isreg() members always have data
            raise ArchiveError(f"member {member.name!r}: no data")
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > member.size:  # pragma: no cover - tarfile never over-reads
                    raise ArchiveError(f"member {member.name!r}: more data than its header says")
                digest.update(chunk)
                out.write(chunk)
        if written != member.size:
            raise ArchiveError(f"member {member.name!r}: truncated ({written}/{member.size})")
        self.result.total_bytes += written
        self.result.files["/".join(parts)] = digest.hexdigest()

    def hard_link(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        target = "/".join(member_parts(member.linkname))
        if target not in self.result.files:
            raise ArchiveError(
                f"member {member.name!r}: hard link to {member.linkname!r}, "
                "which is not a file extracted earlier"
            )
        parent = self.ensure_dir(parts[:-1], member.name)
        try:
            os.link(self.dest / target, parent / parts[-1], follow_symlinks=False)
        except FileExistsError:
            raise ArchiveError(f"member {member.name!r}: duplicate path") from None
        self.result.files["/".join(parts)] = self.result.files[target]

    def queue_symlink(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        target = member.linkname
        if not target or "\x00" in target or PurePosixPath(target).is_absolute():
            raise ArchiveError(f"member {member.name!r}: symlink to absolute path {target!r}")
        lexical = os.path.normpath(os.path.join(*parts[:-1], target) if parts[:-1] else target)
        if lexical in (".", "..") or lexical.startswith("../"):
            raise ArchiveError(f"member {member.name!r}: symlink {target!r} points outside")
        self.pending_links.append((parts, target))

    def finish_symlinks(self) -> None:
        for parts, target in self.pending_links:
            name = "/".join(parts)
            parent = self.ensure_dir(parts[:-1], name)
            try:
                os.symlink(target, parent / parts[-1])
            except FileExistsError:
                raise ArchiveError(f"member {name!r}: duplicate path") from None
            self.result.symlinks[name] = target
        for parts, target in self.pending_links:
            name = "/".join(parts)
            resolved = os.path.realpath(self.dest.joinpath(*parts))
            inside = os.path.commonpath([resolved, self.real_dest]) == self.real_dest
            if not inside or resolved == self.real_dest:
                raise ArchiveError(f"member {name!r}: symlink {target!r} resolves outside")
            if not os.path.exists(resolved):
                raise ArchiveError(f"member {name!r}: symlink {target!r} points to nothing")


def extract_stream(fileobj: IO[bytes], dest: Path, limits: Limits | None = None) -> Extracted:
    """Extract a tar stream into the existing, empty folder `dest` under the safety rules."""
    limits = limits or Limits()
    extractor = _Extractor(dest, limits)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_guarded_tarinfo(limits)) as tar:
            # next() rather than iteration: the iterator indexes `tar.members`, which in
            # stream mode only grows (one TarInfo per member); emptied here, memory is flat.
            seen: list[tarfile.TarInfo] = tar.members  # type: ignore[attr-defined]
            while (member := tar.next()) is not None:
                seen.clear()
                extractor.add(tar, member)
    except ArchiveError:
        raise
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise ArchiveError(f"not a readable tar archive: {exc}") from None
    except OSError as exc:
        if isinstance(exc, (ConnectionError, TimeoutError)):
            raise
        # gzip/bz2/lzma raise OSError subclasses ("Not a gzipped file", "Invalid data stream").
        if exc.errno is None:
            raise ArchiveError(f"not a readable tar archive: {exc}") from None
        raise
    extractor.finish_symlinks()
    return extractor.result
