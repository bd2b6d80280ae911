"""A small, fast, deterministic YAML emitter for Kubernetes manifests.

PyYAML's emitter is slow (~200 objects/s pure, ~1,100 with libyaml) and its two
implementations fold long strings differently, so output would depend on the machine.
Manifests need only a subset of YAML: mappings with string keys, lists, strings, ints,
floats, booleans and null. This emitter writes that subset in block style with sorted keys,
quotes every string a YAML 1.1 or 1.2 parser could read as something else, and writes
multi-line strings as `|` blocks so PR reviews stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Plain scalars we allow: conservative, so both YAML 1.1 and 1.2 read them back as strings.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@=,+-]*(?:[ :][A-Za-z0-9_./@=,+-]+)*$")
# Words a YAML 1.1 or 1.2 resolver turns into booleans or null.
_RESERVED = frozenset(
    w
    for word in ("y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf")
    for w in (word, word.capitalize(), word.upper())
)
_NUMBERISH = re.compile(r"^[-+.]?[0-9]|^\.(?:inf|nan)$|^[-+]?\.[0-9]|^0[box]", re.I)
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
_NEEDS_ESCAPE = re.compile(
    "[\\\\\"\x00-\x1f\x7f-\x9f\xa0\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)
_BLOCK_SAFE = re.compile("^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff]*$")

_cache: dict[str, str] = {}


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
    if (
        _PLAIN.match(text)
        and text not in _RESERVED
        and not _NUMBERISH.match(text)
        and not text.endswith(":")
        and "://" not in text
    ):
        out = text
    else:
        out = quote(text)
    if len(_cache) < 100_000:
        _cache[text] = out
    return out


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinity are not emitted")
    text = repr(value)
    if "e" in text or "E" in text:
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
    if "\n" not in text or not _BLOCK_SAFE.match(text):
        return None
    body = text[:-1] if text.endswith("\n") else text
    if body.endswith("\n") or body.startswith((" ", "\t", "\n")) or not body:
        return None
    lines = body.split("\n")
    if any(line.endswith((" ", "\t")) for line in lines):
        return None
    chomp = "" if text.endswith("\n") else "-"
    inner = indent + "  "
    return f"|{chomp}\n" + "\n".join(inner + line if line else "" for line in lines)


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Append the block-style lines of a mapping or list (non-empty) at `indent`."""
    if isinstance(value, dict):
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError("mapping keys must be strings")
            item = value[key]
            head = f"{indent}{scalar_string(key)}:"
            _emit_item(head, item, indent, out, nested_indent=indent + "  ")
    else:
        for item in value:
            head = f"{indent}-"
            _emit_item(head, item, indent, out, nested_indent=indent + "  ", in_list=True)


def _emit_item(
    head: str, item: Any, indent: str, out: list[str], *, nested_indent: str, in_list: bool = False
) -> None:
    if isinstance(item, dict | list) and item:
        if in_list and isinstance(item, dict):
            # "- key: value" with the rest of the mapping aligned under the first key.
            lines: list[str] = []
            _emit(item, nested_indent, lines)
            lines[0] = head + " " + lines[0][len(nested_indent):]
            out.extend(lines)
        else:
            out.append(head)
            _emit(item, nested_indent, out)
    elif isinstance(item, dict):
        out.append(head + " {}")
    elif isinstance(item, list):
        out.append(head + " []")
    elif isinstance(item, str) and "\n" in item:
        block = _block(item, indent)
        out.append(head + " " + (block if block is not None else quote(item)))
    else:
        out.append(head + " " + _scalar(item))


def dump(value: dict[str, Any] | list[Any]) -> str:
    """One YAML document (no `---`), ending in a newline."""
    if not value:
        return ("{}" if isinstance(value, dict) else "[]") + "\n"
    out: list[str] = []
    _emit(value, "", out)
    return "\n".join(out) + "\n"


def dump_all(documents: Iterable[dict[str, Any]]) -> str:
    """A multi-document stream, each document introduced by `---`."""
    return "".join("---\n" + dump(doc) for doc in documents)
