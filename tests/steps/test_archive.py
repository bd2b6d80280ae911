"""Safe streaming extraction: every trick must fail with a message naming the member."""

from __future__ import annotations

import io
import tarfile
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
