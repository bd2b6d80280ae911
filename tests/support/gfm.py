"""GitHub's Markdown renderer (cmark-gfm via `cmarkgfm`) and a reader for what it produced.

`render` uses the extensions GitHub enables (table, autolink, strikethrough, tagfilter,
tasklist) with raw HTML let through (GitHub sanitizes afterwards; letting it through here
makes any raw HTML visible to the tests). `read` parses the HTML into the tags it holds and
the text a reader sees, with what sits inside `<code>` and `<a>` kept apart, since GitHub's
mention/reference/emoji filters skip those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

ZWSP = "\u200b"
#: What GitHub's text filters would turn into mentions, references, emoji or commit links.
ACTIVE_TEXT = re.compile(r"@[A-Za-z0-9]|#\d|(?i:\bgh-\d)|:[\w+-]+:|(?i:[0-9a-f]{7})")


def render(markdown: str) -> str:
    html: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE
    )
    return html


@dataclass
class Page:
    tags: list[str] = field(default_factory=list)
    attrs: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: str = ""  # everything visible, in order
    plain: str = ""  # visible text outside <code> and <a> (what GitHub's filters see)
    code: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)  # text of each <td>/<th>
    comments: int = 0

    def seen(self) -> str:
        """The visible text without our zero-width spaces."""
        return self.text.replace(ZWSP, "")


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._inert = 0
        self._code: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.plain += " "  # GitHub's filters see one text node at a time
        self.page.tags.append(tag)
        self.page.attrs.append((tag, dict(attrs)))
        if tag in ("code", "a", "pre"):
            self._inert += 1
        if tag == "code":
            self._code = []
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self.page.plain += " "
        if tag in ("code", "a", "pre"):
            self._inert -= 1
        if tag == "code" and self._code is not None:
            self.page.code.append("".join(self._code))
            self._code = None
        if tag in ("td", "th") and self._cell is not None:
            self.page.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not data.strip("\n"):
            return  # cmark's newlines between block tags (our values never hold one)
        self.page.text += data
        if not self._inert:
            self.page.plain += data
        if self._code is not None:
            self._code.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def handle_comment(self, data: str) -> None:
        self.page.comments += 1


def read(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


def read_markdown(markdown: str) -> Page:
    return read(render(markdown))
