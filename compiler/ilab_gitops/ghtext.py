"""Text that goes to GitHub is inert: the one place where untrusted strings are escaped.

File names, field values, taxonomy paths, PR titles, URLs and error messages come from people
who can open a pull request. Whatever they contain, what this module returns renders on
GitHub (cmark-gfm with the table, autolink, strikethrough and tagfilter extensions, then
GitHub's filters for mentions, references and emoji) as the same visible characters and
nothing else: no HTML, link, image, mention, cross-reference, emphasis or table break.

- `visible`: the one-line form everything starts from. Runs of whitespace (newlines included)
  become one space; control and format characters (C0/C1, bidi overrides, zero-width, line
  separators) become `\\xNN` / `\\uNNNN`, so they can be seen and cannot reorder or hide text.
- Markdown: `text` (prose, also safe in a table cell), `code` (an inline code span;
  `cell=True` inside a table), `link` (http(s) URLs only, percent-encoded), `html` (inside
  our own HTML tags), `mention` (a deliberate @login). Prose has every ASCII punctuation
  character backslash-escaped, which CommonMark renders as the literal character. GitHub's
  filters run on the rendered text outside code and links, so a zero-width space (U+200B,
  which `visible` never lets through from input) goes after `@`, after `#` before a digit,
  after `GH-`, after the `:` that opens an `:emoji:` and every six characters of a
  commit-like hex word.
- Plain text (diagnostics, reports, Actions logs): `line` keeps a string on one line that no
  runner reads as a workflow command (`::cmd::` at its start, `##[cmd]` anywhere);
  `annotation` builds `::error file=...::message` with the escaping of GitHub's toolkit.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from urllib.parse import quote, urlsplit

#: Zero-width space: invisible, but it ends the matches of GitHub's text filters.
ZWSP = "\u200b"

_ASCII_PUNCT = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
# GitHub's filters on rendered text: @mentions (users, teams, emails, user@sha), #123,
# GH-123 and owner/repo#123 references, :emoji: shortcodes (custom emoji are images),
# commit SHAs (links). Each pattern ends where the zero-width space goes.
_FILTERS = re.compile(r"@|#(?=\d)|(?i:\bGH-)(?=\d)|:(?=[\w+-]+:)|(?i:[0-9a-f]{6})(?=(?i:[0-9a-f]))")
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?")
# Characters a URL keeps; everything else (spaces, parentheses, brackets, quotes, angle
# brackets, backslash, backtick, pipe, braces, non-ASCII, controls) is percent-encoded.
_URL_SAFE = "/:@!$&'*+,;=-._~?#%"


def _hidden(char: str) -> bool:
    # Cc: C0/C1 controls; Cf: format (bidi overrides, zero-width); Cs: lone surrogates;
    # Zl/Zp: line and paragraph separators. ZWJ stays: emoji sequences need it.
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") and char != "\u200d"


def _shown(char: str) -> str:
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point < 0x10000 else f"\\U{point:08x}"


def reveal(value: str) -> str:
    """`value` with every control or format character written as an escape sequence."""
    return "".join(_shown(c) if _hidden(c) else c for c in value)


def visible(value: str, limit: int | None = None) -> str:
    """`value` as one line of visible characters, cut (with an ellipsis) to `limit`."""
    shown = reveal(" ".join(value.split()))
    if limit is not None and len(shown) > limit:
        shown = shown[: max(limit - 1, 0)].rstrip() + "…"
    return shown


def _break_filters(value: str) -> str:
    return _FILTERS.sub(lambda m: m.group(0) + ZWSP, value)


# --- Markdown ---------------------------------------------------------------------------


def text(value: str, limit: int | None = 300) -> str:
    """`value` as inert Markdown prose on one line; also safe inside a table cell."""
    return _ASCII_PUNCT.sub(r"\\\1", _break_filters(visible(value, limit)))


def code(value: str, limit: int | None = None, *, cell: bool = False) -> str:
    """`value` as an inline code span, whatever it contains; `cell` inside a pipe table.

    The fence is one backtick longer than the longest run inside; a space pads content that
    starts or ends with a backtick (CommonMark strips one). GitHub's filters skip code, and
    in a table cell the table extension turns `\\|` back into `|` before the span is read.
    """
    flat = visible(value, limit) or " "
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat[0] == "`" or flat[-1] == "`" else ""
    span = f"{fence}{pad}{flat}{pad}{fence}"
    return span.replace("|", "\\|") if cell else span


def safe_url(url: str) -> str | None:
    """`url` percent-encoded for a Markdown link, or None unless it is http(s) with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(c.isspace() or _hidden(c) for c in url):
        return None
    return quote(url, safe=_URL_SAFE)


def link(label: str, url: str, *, cell: bool = False) -> str:
    """A Markdown link with an inert label; a URL that is not http(s) is shown, not linked."""
    target = safe_url(url)
    if target is None:
        return f"{text(label)} ({code(url, cell=cell)})"
    # `&` stays (query strings), written `&amp;`: cmark decodes entities in destinations.
    return f"[{text(label)}]({target.replace('&', '&amp;')})"


def html(value: str, limit: int | None = 300) -> str:
    """`value` for the inside of our own HTML elements (e.g. `<summary>`): escaped, one line."""
    return _html.escape(_break_filters(visible(value, limit)), quote=True)


def mention(login: str) -> str:
    """`@login` for a GitHub login (a deliberate ping); anything else as inert text."""
    return f"@{login}" if _LOGIN.fullmatch(login) else text(login)


# --- plain text and GitHub Actions workflow commands ------------------------------------


def line(value: str) -> str:
    """`value` for one line of plain-text output that GitHub Actions reads as plain text.

    Control and format characters (newlines included) become escape sequences, a leading
    `:` (after blanks: the runner trims) becomes `\\x3a` and every `##[` becomes `#\\x23[`,
    so no part of `value` starts a line or forms a workflow command.
    """
    shown = reveal(value).replace("##[", "#\\x23[")
    stripped = shown.lstrip()
    if stripped.startswith(":"):
        shown = shown[: len(shown) - len(stripped)] + "\\x3a" + stripped[1:]
    return shown


def command_property(value: str) -> str:
    """A workflow-command property value, escaped as `@actions/core` does (escapeProperty)."""
    return (
        value.replace("%", "%25")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
        .replace(":", "%3A")
        .replace(",", "%2C")
    )


def command_data(value: str) -> str:
    """A workflow-command message, escaped as `@actions/core` does (escapeData)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotation(level: str, message: str, **properties: str | int | None) -> str:
    """`::level prop=value,...::message`; the message and `title` are made one line first.

    `file` is passed exactly (escaped, not rewritten) so the annotation lands on that file.
    """
    props = ",".join(
        f"{key}={command_property(str(value) if key == 'file' else line(str(value)))}"
        for key, value in properties.items()
        if value is not None
    )
    head = f"::{level} {props}" if props else f"::{level}"
    return f"{head}::{command_data(line(message))}"
