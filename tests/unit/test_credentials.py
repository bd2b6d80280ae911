"""The credential scan's shortcuts (a literal prefilter, exact-type dispatch) change nothing:
same findings, same order, as running every pattern over every key and string."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ilab_gitops.load.sources import PathKey
from ilab_gitops.spec.credentials import _PATTERNS, find_credentials, looks_like_credential
from tests.support.strategies import DERANDOMIZED

PIECES = (
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "hf_", "ghp_", "gho_", "ghs_", "github_pat_",
    "-----BEGIN ", "RSA ", "PRIVATE KEY-----", "://", "s3", "HTTPS", "user", ":", "@", "sk-",
    "ABCDEFGHIJKLMNOP", "0123456789", "abcdefghij" * 4, "_", "-", " ", "/", "\n", "é",
)  # fmt: skip
TEXTS = st.lists(st.sampled_from(PIECES), max_size=8).map("".join) | st.text(max_size=40)


def _reference_what(text: str) -> str | None:
    for what, pattern in _PATTERNS:
        if pattern.search(text):
            return what
    return None


def _reference_scan(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            what = _reference_what(str(key))
            if what is not None:
                yield (*path, key), what
            yield from _reference_scan(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _reference_scan(item, (*path, index))
    elif isinstance(data, str):
        what = _reference_what(data)
        if what is not None:
            yield path, what


@DERANDOMIZED
@given(TEXTS)
def test_prefilter_never_hides_a_match(text: str) -> None:
    assert looks_like_credential(text) == _reference_what(text)


DATA = st.recursive(
    st.one_of(TEXTS, st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(TEXTS | st.integers(), inner, max_size=4),
    ),
    max_leaves=16,
)


@DERANDOMIZED
@given(DATA)
def test_scan_finds_what_every_pattern_on_every_string_finds(data: Any) -> None:
    assert list(find_credentials(data)) == list(_reference_scan(data))


def test_scan_reports_keys_values_and_list_items_with_their_paths() -> None:
    token = "ghp_" + "x" * 36
    data = {"spec": {token: 1, "url": "https://u:pw@h/x", "list": ["ok", "sk-" + "a" * 40]}}
    assert list(find_credentials(data)) == [
        (("spec", token), "a GitHub token"),
        (("spec", "url"), "a password in a URL"),
        (("spec", "list", 1), "an OpenAI-style API key"),
    ]
