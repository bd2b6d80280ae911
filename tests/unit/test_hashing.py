"""The hand-written JSON spellings in manifests/hashing.py against the standard library's."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ilab_gitops.manifests.hashing import canonical_json, pretty_json
from tests.support.strategies import DERANDOMIZED

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=12,
)


@DERANDOMIZED
@given(JSON_VALUES)
def test_pretty_json_is_the_standard_librarys_indented_sorted_unicode_text(value: Any) -> None:
    assert pretty_json(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@DERANDOMIZED
@given(JSON_VALUES)
def test_canonical_json_is_sorted_compact_ascii(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical_json(value) == expected


class Colour(enum.StrEnum):
    RED = "red"


def test_subclasses_of_str_and_int_are_spelled_as_their_values() -> None:
    value = {"colour": Colour.RED, "flag": True, "count": 3, "nested": {"on": False}}
    assert pretty_json(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    assert '"flag": true' in pretty_json(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, {"x": [math.inf]}])
def test_non_finite_numbers_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        pretty_json(bad)
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        pretty_json({"x": object()})
    with pytest.raises(TypeError):
        pretty_json(object())
