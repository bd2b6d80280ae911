"""`ghtext`: untrusted strings through GitHub's own Markdown renderer stay inert and visible.

Each property renders our output with cmark-gfm (GitHub's extensions, raw HTML let through)
and reads the HTML back: only the tags we wrote, the same cells and rows, nothing GitHub's
mention/reference/emoji/commit filters would act on, and the user's characters visible as
`visible()` promises (minus our zero-width spaces). Annotations are parsed the way the
Actions runner parses workflow commands.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ilab_gitops import ghtext
from tests.support.actions import is_command, parse_command
from tests.support.gfm import ACTIVE_TEXT, read_markdown

#: Crafted pieces mixed into generated strings: every construct that could turn active.
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "</details><b>",
    "<!-- x -->",
    "[link](https://evil.example)",
    "![img](https://evil.example/a.png)",
    "<https://evil.example>",
    "www.evil.example",
    "http://evil.example/x",
    "https://evil.example",
    "ftp://evil.example",
    "mailto:a@evil.example",
    "a@evil.example",
    "@octocat",
    "@org/team",
    "#123",
    "GH-42",
    "owner/repo#1",
    "user@a5c3785ed8d6a35868bc169f07e40e889087fd2e",
    "a5c3785ed8d6a35868bc169f07e40e889087fd2e",
    ":octocat:",
    "**bold** __b__ *i* _i_ ~~s~~",
    "```",
    "`` ` ``",
    "|",
    "\\|",
    "a | b",
    "\n| --- |\n",
    "\n# heading",
    "\n> quote",
    "\n- item",
    "\n1. item",
    "\n===",
    "    indented",
    "&amp;",
    "&#60;b&#62;",
    "\\",
    "[x]: https://evil.example",
    "- [ ] task",
    "\r\n::error::boom",
    "\x00\x07\x1b[31m",
    "\u202eevil\u202c",
    "\u2028\u2029\x85",
    "\u200b",
    "%0A::add-mask::x",
]
pieces = st.one_of(st.text(max_size=30), st.sampled_from(HOSTILE))
hostile_text = st.lists(pieces, max_size=6).map("".join)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


def assert_inert(page_text: str) -> None:
    assert not ACTIVE_TEXT.search(page_text), page_text


@SETTINGS
@given(hostile_text)
def test_prose_renders_as_its_visible_characters_and_nothing_else(value: str) -> None:
    page = read_markdown(f"x {ghtext.text(value, None)} y")
    assert page.tags == ["p"]
    assert page.comments == 0
    assert page.seen() == f"x {ghtext.visible(value)} y"
    assert_inert(page.plain)


@SETTINGS
@given(hostile_text)
def test_prose_at_the_start_of_a_line_opens_no_block(value: str) -> None:
    page = read_markdown(f"{ghtext.text(value, None)}\n")
    assert set(page.tags) <= {"p"}
    assert page.seen() == ghtext.visible(value)


@SETTINGS
@given(hostile_text, hostile_text)
def test_table_cells_keep_the_table_shape(first: str, second: str) -> None:
    table = (
        "| a | b | c |\n| --- | --- | --- |\n"
        f"| {ghtext.text(first, None)} | {ghtext.code(second, cell=True)} | z |\n"
    )
    page = read_markdown(table)
    assert page.tags.count("tr") == 2
    assert page.tags.count("td") == 3
    cells = [c.replace(ghtext.ZWSP, "") for c in page.cells]
    assert cells == ["a", "b", "c", ghtext.visible(first), ghtext.visible(second) or " ", "z"]
    assert set(page.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "code"}
    assert_inert(page.plain)


@SETTINGS
@given(hostile_text)
def test_code_span_holds_any_text(value: str) -> None:
    page = read_markdown(f"x {ghtext.code(value)} y")
    assert page.tags == ["p", "code"]
    assert page.code == [ghtext.visible(value) or " "]


@SETTINGS
@given(hostile_text, st.one_of(hostile_text, hostile_text.map(lambda s: "https://e.com/" + s)))
def test_links_only_to_http_urls_with_an_inert_label(label: str, url: str) -> None:
    page = read_markdown(f"x {ghtext.link(label, url)} y")
    links = [attrs for tag, attrs in page.attrs if tag == "a"]
    target = ghtext.safe_url(url)
    if target is None:
        assert links == []
        assert page.tags == ["p", "code"]
        assert page.code == [ghtext.visible(url) or " "]
    else:
        assert links == [{"href": target}]
        assert re.match(r"https?://", target)
        assert page.tags == ["p", "a"]
        assert page.seen() == f"x {ghtext.visible(label)} y"


@SETTINGS
@given(hostile_text)
def test_inside_our_html_only_our_tags(value: str) -> None:
    block = f"<details><summary><code>{ghtext.html(value)}</code>: {ghtext.html(value)}</summary>"
    page = read_markdown(f"{block}\n\nbody\n\n</details>\n")
    assert page.tags == ["details", "summary", "code", "p"]
    shown = ghtext.visible(value)
    assert [c.replace(ghtext.ZWSP, "") for c in page.code] == [shown]
    assert page.seen() == f"{shown}: {shown}body"
    assert_inert(page.plain)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Who is @octocat?", "Who is \\@\u200boctocat\\?"),
        ("See #12 | <b>", "See \\#\u200b12 \\| \\<b\\>"),
        ("`code` [l](u) *b*", "\\`code\\` \\[l\\]\\(u\\) \\*b\\*"),
        ("line\nbreak\u202e", "line break\\\\u202e"),
        ("www.x.com", "www\\.x\\.com"),
    ],
)
def test_text_examples(value: str, expected: str) -> None:
    assert ghtext.text(value) == expected


def test_text_and_code_clip_long_values() -> None:
    assert ghtext.text("a" * 10 + "|", 5) == "aaaa…"
    assert ghtext.code("x" * 10, 4) == "`xxx…`"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "`plain`"), ("a`b", "``a`b``"), ("`edge", "`` `edge ``"), ("", "` `")],
)
def test_code_examples(value: str, expected: str) -> None:
    assert ghtext.code(value) == expected
    assert ghtext.code("a|b", cell=True) == "`a\\|b`"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.com/a b", None),
        ("https://e.com/a(b)<c>", "https://e.com/a%28b%29%3Cc%3E"),
        ("javascript:alert(1)", None),
        ("//e.com/x", None),
        ("https://e.com/ü", "https://e.com/%C3%BC"),
    ],
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert ghtext.safe_url(url) == expected


def test_mention_only_for_logins() -> None:
    assert ghtext.mention("octo-cat") == "@octo-cat"
    assert ghtext.mention("my-app[bot]") == "@my-app[bot]"
    assert ghtext.mention("x](y) <b>") == "x\\]\\(y\\) \\<b\\>"


# --- plain text and workflow commands ---------------------------------------------------


@SETTINGS
@given(hostile_text, hostile_text, hostile_text)
def test_annotation_round_trips_through_the_runners_parser(
    path: str, title: str, message: str
) -> None:
    out = ghtext.annotation("error", message, file=path, line=3, col=4, title=title)
    assert "\n" not in out and "\r" not in out
    name, props, data = parse_command(out)
    assert name == "error"
    assert props == {"file": path, "line": "3", "col": "4", "title": ghtext.line(title)}
    assert data == ghtext.line(message)
    assert "\n" not in data and "\r" not in data


@SETTINGS
@given(hostile_text)
@example("::add-mask::secret")
@example("  ::stop-commands::x")
@example("ok ##[error]x")
def test_a_text_line_is_one_line_and_never_a_command(value: str) -> None:
    out = ghtext.line(value)
    assert not any(ghtext.reveal(c) != c for c in out)
    assert out.splitlines() == ([out] if out else [])
    assert not is_command(out)
    plain = not any(ghtext.reveal(c) != c for c in value) and not is_command(value)
    if plain and not value.lstrip().startswith(":"):
        assert out == value


def test_line_examples() -> None:
    assert ghtext.line("runs/a\nb.yaml:1:1: x") == "runs/a\\x0ab.yaml:1:1: x"
    assert ghtext.line("::error::x") == "\\x3a:error::x"
    assert ghtext.line("a ##[warning]b") == "a #\\x23[warning]b"
    assert ghtext.line("bidi \u202e") == "bidi \\u202e"
    assert ghtext.line("tag \U000e0041") == "tag \\U000e0041"
