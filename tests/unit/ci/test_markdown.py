from __future__ import annotations

import pytest

from ilab_gitops.ci import markdown as md


def test_inline_neutralises_tables_html_mentions_and_references() -> None:
    text = "Who is @octocat?\nSee #12 | <b>x</b> & `code` [link](u) *bold* issue#x"
    assert md.inline(text) == (
        "Who is @&#8203;octocat? See #&#8203;12 \\| &lt;b&gt;x&lt;/b&gt; &amp; \\`code\\` "
        "\\[link\\](u) \\*bold\\* issue#x"
    )


def test_inline_clips_long_text_before_escaping() -> None:
    assert md.inline("a" * 10 + "|", limit=5) == "aaaa…"
    assert md.clip("short", 10) == "short"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", "`plain`"), ("a`b", "``a`b``"), ("`edge", "`` `edge ``"), ("", "` `")],
)
def test_code_span_holds_any_text(text: str, expected: str) -> None:
    assert md.code(text) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [(5.0, 6.0, "+1.00"), (6.0, 5.5, "-0.50"), (5.0, 5.001, "±0.00"), (None, 1.0, "—")],
)
def test_delta(before: float | None, after: float | None, expected: str) -> None:
    assert md.delta(before, after) == expected


def test_change_and_table() -> None:
    assert md.change(0.5, 0.6, 3) == "0.500 → 0.600 (+0.100)"
    assert md.table(["a", "b"], "lr", [["1", "2"]]) == ["| a | b |", "| --- | ---: |", "| 1 | 2 |"]


def test_link_escapes_the_label_only() -> None:
    assert md.link("run @x", "https://e.com/a b") == "[run @&#8203;x](https://e.com/a%20b)"
