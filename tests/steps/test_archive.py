"""Safe streaming extraction: every trick must fail with a message naming the member."""

from __future__ import annotations

import io
import re
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from ilab_gitops.steps.archive import ArchiveError, Limits, extract_stream
from tests.steps.builders import link, sha256, special, tar_bytes


def extract(tmp_path: Path, data: bytes, limits: Limits | None = None) -> Path:
    dest = tmp_path / "out"
    dest.mkdir()
    extract_stream(io.BytesIO(data), dest, limits)
    return dest


def test_regular_files_dirs_and_internal_links(tmp_path: Path) -> None:
    data = tar_bytes(
        {"a/b.txt": b"hello", "./c.txt": b"x"},
        extra=[
            link("a/link.txt", "b.txt"),
            link("a/hard.txt", "a/b.txt", hard=True),
            link("top", "a"),
        ],
    )
    dest = tmp_path / "out"
    dest.mkdir()
    result = extract_stream(io.BytesIO(data), dest)
    assert (dest / "a" / "b.txt").read_bytes() == b"hello"
    assert (dest / "a" / "link.txt").read_bytes() == b"hello"
    assert (dest / "top" / "b.txt").read_bytes() == b"hello"
    assert result.files == {
        "a/b.txt": sha256(b"hello"),
        "c.txt": sha256(b"x"),
        "a/hard.txt": sha256(b"hello"),
    }
    assert result.symlinks == {"a/link.txt": "b.txt", "top": "a"}


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_any_compression_is_detected(tmp_path: Path, mode: str) -> None:
    dest = extract(tmp_path, tar_bytes({"f": b"1"}, mode=mode))
    assert (dest / "f").read_bytes() == b"1"


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({"../evil": b"x"}, [], "'..' in path"),
        ({"a/../../evil": b"x"}, [], "'..' in path"),
        ({"/etc/evil": b"x"}, [], "absolute path"),
        ({}, [link("l", "/etc/passwd")], "symlink to absolute path"),
        ({}, [link("l", "../outside")], "points outside"),
        ({}, [link("a/l", "../../outside")], "points outside"),
        # "." resolves to the root itself; "dot/.." would then climb out of it.
        ({}, [link("dot", ".")], "points outside"),
        ({"d/f": b"x"}, [link("d/up", ".."), link("esc", "d/up/../x")], "points outside"),
        ({}, [link("l", "missing")], "points to nothing"),
        ({}, [link("h", "/etc/passwd", hard=True)], "absolute path"),
        ({}, [link("h", "../x", hard=True)], "'..' in path"),
        ({}, [link("h", "later", hard=True)], "not a file extracted earlier"),
        ({}, [special("dev", tarfile.CHRTYPE)], "device file not allowed"),
        ({}, [special("blk", tarfile.BLKTYPE)], "device file not allowed"),
        ({}, [special("fifo", tarfile.FIFOTYPE)], "fifo/special file not allowed"),
    ],
)
def test_unsafe_members_are_refused(
    tmp_path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo], message: str
) -> None:
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(".", r"\.")):
        extract(tmp_path, tar_bytes(files, extra=extra))
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "outside").exists()


def test_symlink_then_file_through_it_is_refused(tmp_path: Path) -> None:
    # Classic: "d" -> somewhere, then "d/payload". Links are made last, so "d" is a real
    # folder when the file is written and the later link collides with it.
    (tmp_path / "target").mkdir()
    data = tar_bytes({"d/payload": b"x"}, extra=[link("d", "../target")])
    with pytest.raises(ArchiveError, match="points outside"):
        extract(tmp_path, data)
    assert list((tmp_path / "target").iterdir()) == []


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for payload in (b"one", b"two"):
            info = tarfile.TarInfo("same")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ArchiveError, match="duplicate path"):
        extract(tmp_path, buffer.getvalue())


def test_file_over_a_file_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="is not a folder"):
        extract(tmp_path, tar_bytes({"a": b"x", "a/b": b"y"}))


def test_limits(tmp_path: Path) -> None:
    files = {f"f{i}": b"x" * 10 for i in range(5)}
    with pytest.raises(ArchiveError, match="more than 3 members"):
        extract(tmp_path / "1", tar_bytes(files), Limits(max_members=3))
    with pytest.raises(ArchiveError, match="per-file limit"):
        extract(tmp_path / "2", tar_bytes(files), Limits(max_file_bytes=9))
    with pytest.raises(ArchiveError, match="expands beyond 25 bytes"):
        extract(tmp_path / "3", tar_bytes(files), Limits(max_total_bytes=25))


@pytest.fixture(autouse=True)
def _subdirs(tmp_path: Path) -> None:
    for name in ("1", "2", "3"):
        (tmp_path / name).mkdir()


def test_corrupt_gzip(tmp_path: Path) -> None:
    good = tar_bytes({"f": b"x" * 100_000})
    corrupt = good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:]
    with pytest.raises(ArchiveError, match="not a readable tar archive"):
        extract(tmp_path, corrupt)


def test_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not a readable tar archive"):
        extract(tmp_path, b"this is not a tarball at all" * 100)


def test_truncated_archive(tmp_path: Path) -> None:
    good = tar_bytes({"f": bytes(range(256)) * 4000})
    with pytest.raises(ArchiveError, match=r"not a readable tar archive|truncated"):
        extract(tmp_path, good[: len(good) // 2])


# --- extended headers: refused before tarfile buffers them --------------------------------

MiB = 1024 * 1024


def gzip_of(parts: Iterable[bytes]) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip container
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


def extended_header(kind: bytes, size: int) -> bytes:
    header = tarfile.TarInfo("././@LongLink")
    header.type = kind
    header.size = size
    return header.tobuf(tarfile.GNU_FORMAT)


def extended_header_tar(kind: bytes, size: int) -> Iterator[bytes]:
    """An extended header of `size` bytes (zeros, as a bomb would send), then one file."""
    yield extended_header(kind, size)
    zeros = bytes(MiB)
    for _ in range(size // MiB):
        yield zeros
    yield bytes(size % MiB + (-size % tarfile.BLOCKSIZE))
    yield tar_bytes({"after": b"x"}, mode="w")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (tarfile.GNUTYPE_LONGNAME, "GNU long name header of 67108864 bytes exceeds the limit"),
        (tarfile.XHDTYPE, "PAX header of 67108864 bytes exceeds the limit of 1048576"),
    ],
)
def test_huge_extended_header_is_refused_before_it_is_buffered(
    tmp_path: Path, kind: bytes, message: str
) -> None:
    data = gzip_of(extended_header_tar(kind, 64 * MiB))
    assert len(data) < 500_000  # a small download...
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match=re.escape(message)):
            extract(tmp_path, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MiB  # ...that tarfile alone reads whole (64 MiB, twice over)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (tarfile.GNUTYPE_LONGLINK, "GNU long name header of 1600000000 bytes exceeds"),
        (tarfile.XGLTYPE, "PAX header of 1600000000 bytes exceeds the limit"),
        (tarfile.SOLARIS_XHDTYPE, "PAX header of 1600000000 bytes exceeds the limit"),
    ],
)
def test_every_extended_header_type_is_size_checked(
    tmp_path: Path, kind: bytes, message: str
) -> None:
    # Only the header: unchecked, tarfile would try to read 1.6 GB and fail on the short data.
    raw = extended_header(kind, 1_600_000_000) + bytes(4 * tarfile.BLOCKSIZE)
    with pytest.raises(ArchiveError, match=re.escape(message)):
        extract(tmp_path, raw)


def test_a_chain_of_extended_headers_is_bounded(tmp_path: Path) -> None:
    def chain() -> Iterator[bytes]:
        for _ in range(20):
            header = tarfile.TarInfo("././@LongLink")
            header.type = tarfile.GNUTYPE_LONGNAME
            header.size = 6
            yield header.tobuf(tarfile.GNU_FORMAT) + b"name\0\0".ljust(tarfile.BLOCKSIZE, b"\0")
        yield tar_bytes({"after": b"x"}, mode="w")

    with pytest.raises(ArchiveError, match="more than 8 extended headers in a row"):
        extract(tmp_path, gzip_of(chain()))


def test_pax_size_beyond_the_file_limit_is_refused_before_reading(tmp_path: Path) -> None:
    info = tarfile.TarInfo("big.bin")
    info.pax_headers = {"size": str(10**12)}
    raw = info.tobuf(tarfile.PAX_FORMAT) + bytes(2 * tarfile.BLOCKSIZE)
    with pytest.raises(ArchiveError, match=r"'big\.bin': 1000000000000 bytes exceeds"):
        extract(tmp_path, raw)
    assert not (tmp_path / "out" / "big.bin").exists()


def test_old_gnu_sparse_member_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("sparse.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    raw = info.tobuf(tarfile.GNU_FORMAT) + bytes(2 * tarfile.BLOCKSIZE)
    with pytest.raises(ArchiveError, match=r"'sparse\.bin': sparse files are not supported"):
        extract(tmp_path, raw)


def test_path_depth_is_bounded(tmp_path: Path) -> None:
    deep = "d/" * 65 + "f"
    with pytest.raises(ArchiveError, match="deeper than 64 folders"):
        extract(tmp_path, tar_bytes({deep: b"x"}))
    assert list((tmp_path / "out").iterdir()) == []
    extract(tmp_path / "1", tar_bytes({"d/" * 63 + "f": b"x"}))


def test_memory_stays_flat_over_many_members(tmp_path: Path) -> None:
    files = {f"m/{i:05d}": b"" for i in range(20_000)}
    data = tar_bytes(files)
    tracemalloc.start()
    try:
        result = extract(tmp_path, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(list((result / "m").iterdir())) == 20_000
    # Measured: 6.7 MB (mostly the digests map); keeping tarfile's TarInfo list, 14.5 MB.
    assert peak < 10 * MiB
