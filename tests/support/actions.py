"""How the GitHub Actions runner reads a log line: workflow commands and their escaping."""

from __future__ import annotations

import re

_PROPERTY = re.compile("%(25|0D|0A|3A|2C)")
_DATA = re.compile("%(25|0D|0A)")
_DECODE = {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}


def is_command(line: str) -> bool:
    """True when the runner would act on `line`: `::cmd::` (after blanks) or `##[cmd]`."""
    return line.strip().startswith("::") or "##[" in line


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """`::name k=v,k=v::data` split and unescaped as the runner does (one pass)."""
    assert line.startswith("::"), line
    head, sep, data = line[2:].partition("::")
    assert sep, line
    name, _, raw = head.partition(" ")
    props = {}
    for pair in raw.split(",") if raw else []:
        key, _, value = pair.partition("=")
        props[key] = _PROPERTY.sub(lambda m: _DECODE[m.group(1)], value)
    return name, props, _DATA.sub(lambda m: _DECODE[m.group(1)], data)
