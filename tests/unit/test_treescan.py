"""treescan: odd names are refused, escaped paths are one inert line, links are never read."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ilab_gitops.load.treescan import _odd_char, entry_problem, escape, odd_name, walk


def test_plain_names_pass_and_odd_ones_say_why() -> None:
    assert odd_name("granite-a.yaml") is None
    assert odd_name("données.yaml") is None  # non-ASCII letters are fine
    assert "control" in (odd_name("a\nb.yaml") or "")
    assert "control" in (odd_name("rtl\u202e.yaml") or "")
    assert "UTF-8" in (odd_name(os.fsdecode(b"bad\xff.yaml")) or "")
    assert "workflow command" in (odd_name("::error::x.yaml") or "")


@given(st.text(max_size=60))
def test_escaped_text_is_one_line_without_workflow_commands(text: str) -> None:
    shown = escape(text)
    assert "::" not in shown
    assert not any(_odd_char(ch) for ch in shown)
    assert len(shown.splitlines()) <= 1


def test_escape_is_readable() -> None:
    assert escape("runs/a\nb.yaml") == "runs/a\\x0ab.yaml"
    assert escape("::add-mask::x") == ":\\x3aadd-mask:\\x3ax"
    assert escape(os.fsdecode(b"\xff")) == "\\xff"
    assert escape("a\\b") == "a\\\\b"


def test_walk_refuses_links_and_odd_names_and_never_follows(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("x: 1\n")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.yaml").write_text("a: 1\n")
    (root / "empty").mkdir()
    (root / "link.yaml").symlink_to(outside / "secret.yaml")
    (root / "linkdir").symlink_to(outside)
    (root / "odd\x07.yaml").write_text("b: 1\n")
    os.mkfifo(root / "pipe")
    found = walk(root)
    assert found.files == ["sub/ok.yaml"]
    assert found.empty_dirs == ["empty"]
    reasons = {r.path: r.reason for r in found.refused}
    assert set(reasons) == {"link.yaml", "linkdir", "odd\x07.yaml", "pipe"}
    assert "symbolic link" in reasons["linkdir"]
    assert "not a regular file" in reasons["pipe"]
    assert entry_problem(root / "link.yaml") is not None
    assert entry_problem(root / "sub") is None
