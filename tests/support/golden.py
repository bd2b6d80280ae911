"""Compare generated text with checked-in files; rewrite them only when asked."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

import pytest

UPDATE_HINT = "run `make update-goldens` (pytest --update-goldens) if the change is intended"


def check_tree(directory: Path, expected: Mapping[str, str], update: bool) -> None:
    """Assert that `directory` holds exactly `expected` (bytes), or rewrite it when `update`."""
    actual = (
        {
            p.relative_to(directory).as_posix(): p.read_bytes().decode("utf-8")
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }
        if directory.is_dir()
        else {}
    )
    if update:
        for rel in actual.keys() - expected.keys():
            (directory / rel).unlink()
        for rel, text in expected.items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        return
    problems: list[str] = []
    for rel in sorted(actual.keys() | expected.keys()):
        want, have = expected.get(rel), actual.get(rel)
        if want == have:
            continue
        if have is None:
            problems.append(f"missing golden file {directory / rel}")
        elif want is None:
            problems.append(f"golden file {directory / rel} is no longer produced")
        else:
            diff = difflib.unified_diff(
                have.splitlines(keepends=True),
                want.splitlines(keepends=True),
                fromfile=f"golden/{rel}",
                tofile=f"generated/{rel}",
            )
            problems.append("".join(diff))
    if problems:
        pytest.fail("\n".join(problems)[:20_000] + "\n" + UPDATE_HINT, pytrace=False)


def check_file(path: Path, expected: str, update: bool) -> None:
    """Assert one generated file is current, or rewrite it when `update`."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(expected.encode("utf-8"))
        return
    have = path.read_bytes().decode("utf-8") if path.exists() else None
    if have == expected:
        return
    if have is None:
        pytest.fail(f"missing generated file {path}; {UPDATE_HINT}", pytrace=False)
    diff = "".join(
        difflib.unified_diff(
            have.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=str(path),
            tofile="generated",
        )
    )
    pytest.fail(f"{path} is out of date:\n{diff[:20_000]}\n{UPDATE_HINT}", pytrace=False)
