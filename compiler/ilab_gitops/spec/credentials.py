"""Detect credentials pasted into a spec: specs hold references to Secrets, never values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ilab_gitops.load.source_map import PathKey

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    # The scheme is bounded: `[a-z][a-z0-9+.-]*` would backtrack quadratically on long words.
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]{0,31}://[^/\s:@]+:[^/\s@]+@", re.I)),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{32,}\b")),
)


#: Text every match of some pattern above contains (keep in step with them): one search for
#: these literals rules out the common case, a string that holds no credential at all, about
#: five times faster than searching with the patterns themselves.
_LITERALS = (
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "hf_", "gh", "github_pat_", "-----BEGIN", "://", "sk-"
)  # fmt: skip
_ANY = re.compile("|".join(re.escape(literal) for literal in _LITERALS))


def looks_like_credential(text: str) -> str | None:
    """What kind of credential `text` holds ("a GitHub token"), or None."""
    if not _ANY.search(text):
        return None
    for what, pattern in _PATTERNS:
        if pattern.search(text):
            return what
    return None


def find_credentials(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    """Yield (path, what) for every string (key or value) that looks like a credential."""
    kind = type(data)
    if kind is dict:
        for key, value in data.items():
            if type(key) is not str or _ANY.search(key):
                yield from _check(str(key), (*path, key))
            vkind = type(value)
            if vkind is str:
                if _ANY.search(value):
                    yield from _check(value, (*path, key))
            elif vkind is dict or vkind is list or isinstance(value, dict | list | str):
                yield from find_credentials(value, (*path, key))
    elif kind is list:
        for index, item in enumerate(data):
            if type(item) is str:
                if _ANY.search(item):
                    yield from _check(item, (*path, index))
            else:
                yield from find_credentials(item, (*path, index))
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _check(str(key), (*path, key))
            yield from find_credentials(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from find_credentials(item, (*path, index))
    elif isinstance(data, str):
        yield from _check(data, path)


def _check(text: str, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    what = looks_like_credential(text)
    if what is not None:
        yield path, what
