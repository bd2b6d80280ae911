"""Every input limit: just inside is accepted, just past is a located error.

The limits (documented in docs/security.md): file size, nesting depth, values after alias
expansion, string length (sources.py) and runs per invocation (workspace.py). A breach must be
reported as `file:line:col: error[code]` before any work that grows with the input (the huge
file is never read: memory stays small), and through the real command line must exit 2, never
crash. How fast a breach is reported is measured by the benchmarks, not asserted here.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import ilab_gitops.load.workspace
from ilab_gitops.load.sources import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_STRING_CHARS,
    LoadError,
    parse_yaml,
)
from ilab_gitops.load.workspace import MAX_RUNS, load_workspace
from tests.security.cli import run_main, run_process
from tests.security.pods import ROOT
from tests.security.specs import write_runs

LOCATED = re.compile(
    r"^(?P<path>\S+):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error\[(?P<code>[a-z-]+)\]"
)


@contextmanager
def small_memory(limit: int = 64 * 2**20) -> Iterator[None]:
    """Python allocations stay under `limit` bytes at their peak (the input is not read)."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak allocation {peak} bytes"


def breach(raw: bytes) -> tuple[str, int, int]:
    """(code, line, column) of the LoadError `raw` must raise, checked for format."""
    with pytest.raises(LoadError) as caught:
        parse_yaml(raw, "runs/r.yaml")
    text = caught.value.diagnostic.as_text()
    match = LOCATED.match(text)
    assert match is not None and match["path"] == "runs/r.yaml", text
    assert "\n" not in text
    return match["code"], int(match["line"]), int(match["col"])


def accepted(raw: bytes) -> None:
    parse_yaml(raw, "runs/r.yaml")


def nested(depth: int) -> bytes:
    """A mapping `depth` levels deep, one key per line."""
    lines = [f"{'  ' * i}k{i}:" for i in range(depth)]
    return ("\n".join(lines) + f"\n{'  ' * depth}leaf\n").encode()


# --------------------------------------------------------------------------- file size


def test_file_size_limit() -> None:
    accepted(b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 6) + b"\n")
    assert breach(b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 5) + b"\n") == ("file-too-large", 1, 1)


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    with (runs / "huge.yaml").open("wb") as handle:
        handle.truncate(8 * 2**30)  # sparse: 8 GiB that would take minutes to read
    with small_memory():
        result = run_main(
            ["validate", str(runs), "--environments", str(ROOT / "environments")], tmp_path
        )
    assert result.returncode == 2
    assert re.search(
        r"huge\.yaml:1:1: error\[file-too-large\] file is 8589934592 bytes", result.stderr
    )


# --------------------------------------------------------------------------- nesting depth


def test_nesting_depth_limit() -> None:
    accepted(nested(MAX_DEPTH))
    code, line, column = breach(nested(MAX_DEPTH + 1))
    assert (code, line) == ("too-deep", MAX_DEPTH + 1)
    assert column > 1


def test_nesting_through_aliases_is_counted() -> None:
    inner = MAX_DEPTH // 2 + 2
    raw = f"x: &x {'[' * inner}1{']' * inner}\ny: {'[' * inner}*x{']' * inner}\n".encode()
    assert breach(raw)[0] == "too-deep"


def test_nesting_bomb_fails_fast_and_does_not_crash_the_interpreter(tmp_path: Path) -> None:
    """60 KB of `[`: the C composer would recurse 30,000 deep and overflow the stack."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r.yaml").write_bytes(b"a: " + b"[" * 30_000 + b"]" * 30_000 + b"\n")
    assert breach((tmp_path / "runs" / "r.yaml").read_bytes())[0] == "too-deep"
    result = run_process(
        ["validate", "runs", "--environments", str(ROOT / "environments")], tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert LOCATED.match(result.stderr) and "error[too-deep]" in result.stderr


# --------------------------------------------------------------------------- values / aliases


def test_value_count_limit() -> None:
    accepted(("a: [" + ", ".join(["1"] * (MAX_NODES - 10)) + "]\n").encode())
    code, line, _ = breach(("a: [" + ", ".join(["1"] * MAX_NODES) + "]\n").encode())
    assert (code, line) == ("too-many-nodes", 1)


def test_alias_expansion_is_counted_and_stops_at_the_alias() -> None:
    """Billion laughs: 10 KB that would expand to 10^9 values."""
    levels = [b"a0: &a0 [" + b", ".join([b"lol"] * 10) + b"]"]
    for i in range(1, 9):
        levels.append(b"a%d: &a%d [%s]" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)))
    code, line, column = breach(b"\n".join(levels) + b"\n")
    assert code == "too-many-nodes"
    assert 1 < line <= 9 and column > 1  # the alias that crossed the limit, not the file start


# --------------------------------------------------------------------------- string length


def test_string_length_limit() -> None:
    accepted(f"a: {'é' * MAX_STRING_CHARS}\n".encode())
    assert breach(f"a: {'é' * (MAX_STRING_CHARS + 1)}\n".encode()) == ("string-too-long", 1, 4)
    key = f"? {'k' * (MAX_STRING_CHARS + 1)}\n: 1\n".encode()
    assert breach(key)[0] == "string-too-long"


# --------------------------------------------------------------------------- runs per invocation


def test_runs_per_invocation_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real limit is MAX_RUNS; a small stand-in keeps the test fast (same code path)."""
    assert MAX_RUNS >= 1000
    monkeypatch.setattr(ilab_gitops.load.workspace, "MAX_RUNS", 3)
    write_runs(tmp_path / "runs", 3)
    assert len(load_workspace([tmp_path / "runs"], ROOT / "environments").runs) == 3
    write_runs(tmp_path / "runs", 4)
    workspace = load_workspace([tmp_path / "runs"], ROOT / "environments")
    assert workspace.runs == []
    assert [d.code for d in workspace.diagnostics] == ["too-many-runs"]
    result = run_main(
        ["render", "runs", "--environments", str(ROOT / "environments"), "--out", "out"], tmp_path
    )
    assert result.returncode == 2
    assert re.match(
        r"^runs:1:1: error\[too-many-runs\] 4 runs in one invocation; the limit is 3", result.stderr
    )
    assert not (tmp_path / "out").exists()
