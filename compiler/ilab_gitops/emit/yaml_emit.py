"""A small, fast, deterministic YAML emitter for Kubernetes manifests.

PyYAML's emitter is slow (~200 objects/s pure, ~1,100 with libyaml) and its two
implementations fold long strings differently, so output would depend on the machine.
Manifests need only a subset of YAML: mappings with string keys, lists, strings, ints,
floats, booleans and null. This emitter writes that subset in block style with sorted keys,
quotes every string a YAML 1.1 or 1.2 parser could read as something else, and writes
multi-line strings as `|` blocks so PR reviews stay readable.

Every document reads back exactly (same types, same values) with PyYAML's SafeLoader and
CSafeLoader (YAML 1.1) and with ruamel.yaml's YAML 1.2 safe loader;
tests/unit/test_yaml_emit.py checks that property on generated documents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

# Plain scalars we allow: conservative, so both YAML 1.1 and 1.2 read them back as strings.
# The first character is a letter, "_" or "/", so no number, date, sexagesimal, indicator
# (-?:,[]{}#&*!|>'"%@`) or special float (.inf) can start one; "\Z", not "$", which would also
# match before a final newline.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@=,+-]*(?:[ :][A-Za-z0-9_./@=,+-]+)*\Z")
# Words a YAML 1.1 or 1.2 resolver turns into booleans or null.
_RESERVED = frozenset(
    w
    for word in ("y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf")
    for w in (word, word.capitalize(), word.upper())
)
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\0": "\\0",
    "\x07": "\\a",
    "\x08": "\\b",
    "\x0b": "\\v",
    "\x0c": "\\f",
    "\x1b": "\\e",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}
# Everything outside YAML's printable set, plus the characters that are line breaks or
# white space in YAML 1.1 but not 1.2 (or vice versa), and the byte order mark.
_NEEDS_ESCAPE = re.compile(
    '[\\\\"\x00-\x1f\x7f-\x9f\xa0\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]'
)
# Characters a `|` block cannot hold as themselves (tab and newline it can).
_BLOCK_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)
#: YAML limits implicit ("key: value") keys to 1024 characters; longer keys use "? key".
_IMPLICIT_KEY_LIMIT = 1000

#: Inline spellings of single-line strings (never multi-line ones: as values those become
#: `|` blocks, so a cached quoted form must not be found for them). Bounded.
_cache: dict[str, str] = {}
#: `key:` for mapping keys short enough to be implicit. Bounded.
_keys: dict[str, str] = {}
_CACHE_LIMIT = 100_000


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def quote(text: str) -> str:
    """A double-quoted YAML scalar that every parser reads back as exactly `text`."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def scalar_string(text: str) -> str:
    """`text` as an inline scalar: plain when unambiguous, else double-quoted."""
    cached = _cache.get(text)
    if cached is not None:
        return cached
    if _PLAIN.match(text) and text not in _RESERVED and "://" not in text:
        out = text
    else:
        out = quote(text)
    if len(_cache) < _CACHE_LIMIT and "\n" not in text:
        _cache[text] = out
    return out


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("NaN and infinity are not emitted")
    text = repr(value)
    if "e" in text or "E" in text:
        # YAML 1.1 floats need a "." and a signed exponent: 1e+16 -> 1.0e+16.
        mantissa, exponent = text.lower().split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "" if exponent.startswith(("-", "+")) else "+"
        return f"{mantissa}e{sign}{exponent}"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return scalar_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _block(text: str, indent: str) -> str | None:
    """A `|` literal block for multi-line text, or None when a block cannot hold it exactly."""
    if _BLOCK_UNSAFE.search(text):
        return None
    body = text[:-1] if text.endswith("\n") else text
    # Leading blanks would need an indentation indicator, trailing newlines "|+", trailing
    # blanks on a line are invisible in review: those texts are quoted instead.
    if (
        not body
        or body.endswith(("\n", " ", "\t"))
        or body.startswith((" ", "\t", "\n"))
        or " \n" in body
        or "\t\n" in body
    ):
        return None
    chomp = "" if text.endswith("\n") else "-"
    inner = "\n" + indent + "  "
    if "\n\n" in body:  # empty lines stay empty (no trailing indentation)
        return f"|{chomp}" + "".join(inner + line if line else "\n" for line in body.split("\n"))
    return f"|{chomp}" + inner + body.replace("\n", inner)


def _key_head(key: Any, indent: str, lead: str, out: list[str]) -> str:
    """The line start for `key`'s value: `<lead>key:`, or a `? key` line then `<indent>:`."""
    if not isinstance(key, str):
        raise TypeError("mapping keys must be strings")
    text = scalar_string(key)
    if len(text) > _IMPLICIT_KEY_LIMIT:
        out.append(f"{lead}? {text}")
        return indent + ":"
    if len(_keys) < _CACHE_LIMIT:
        _keys[key] = text + ":"
    return lead + text + ":"


def _emit_mapping(value: dict[Any, Any], indent: str, out: list[str], lead: str) -> None:
    """Append a non-empty mapping at `indent`; its first line starts with `lead` instead (the
    `- ` of a list item, so the rest of the mapping aligns under the first key).

    The hot loop of every render: exact types are checked inline in order of frequency,
    everything else goes through `_emit_item`.
    """
    append = out.append
    keys = _keys
    strings = _cache
    inner = indent + "  "
    for key in sorted(value):
        known = keys.get(key)
        head = lead + known if known is not None else _key_head(key, indent, lead, out)
        lead = indent
        item = value[key]
        kind = type(item)
        if kind is str:
            text = strings.get(item)
            if text is not None:
                append(head + " " + text)
            else:
                _emit_item(head, item, indent, out)
        elif kind is dict:
            if item:
                append(head)
                _emit_mapping(item, inner, out, inner)
            else:
                append(head + " {}")
        elif kind is list:
            if item:
                append(head)
                _emit_list(item, inner, out)
            else:
                append(head + " []")
        elif kind is int:
            append(head + " " + int.__repr__(item))
        elif kind is bool:
            append(head + (" true" if item else " false"))
        else:
            _emit_item(head, item, indent, out)


def _emit_list(value: list[Any], indent: str, out: list[str]) -> None:
    head = indent + "-"
    lead = indent + "- "
    inner = indent + "  "
    strings = _cache
    for item in value:
        kind = type(item)
        if kind is dict and item:
            _emit_mapping(item, inner, out, lead)
        elif kind is str and item in strings:
            out.append(lead + strings[item])
        else:
            _emit_item(head, item, indent, out)


def _emit_item(head: str, item: Any, indent: str, out: list[str]) -> None:
    """Append `head` (`key:`, `-` or `:`, at `indent`) followed by `item`: the general case."""
    if isinstance(item, str):
        if "\n" in item:
            block = _block(item, indent)
            out.append(head + " " + (block if block is not None else quote(item)))
        else:
            out.append(head + " " + (_cache.get(item) or scalar_string(item)))
    elif isinstance(item, dict):
        if not item:
            out.append(head + " {}")
        elif head.endswith("-"):
            # "- key: value" with the rest of the mapping aligned under the first key.
            _emit_mapping(item, indent + "  ", out, head + " ")
        else:
            out.append(head)
            _emit_mapping(item, indent + "  ", out, indent + "  ")
    elif isinstance(item, list):
        if item:
            out.append(head)
            _emit_list(item, indent + "  ", out)
        else:
            out.append(head + " []")
    else:
        out.append(head + " " + _scalar(item))


def _document(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        if value:
            _emit_mapping(value, "", out, "")
        else:
            out.append("{}")
    elif isinstance(value, list):
        if value:
            _emit_list(value, "", out)
        else:
            out.append("[]")
    else:
        raise TypeError(f"a YAML document must be a mapping or a list, not {type(value).__name__}")


def dump(value: dict[str, Any] | list[Any]) -> str:
    """One YAML document (no `---`), ending in a newline."""
    out: list[str] = []
    _document(value, out)
    out.append("")
    return "\n".join(out)


def dump_all(documents: Iterable[dict[str, Any]]) -> str:
    """A multi-document stream, each document introduced by `---`."""
    out: list[str] = []
    for document in documents:
        out.append("---")
        _document(document, out)
    if not out:
        return ""
    out.append("")
    return "\n".join(out)
