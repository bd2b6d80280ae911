"""The emitter's contract: what it writes, every YAML parser in use reads back exactly.

Readers: PyYAML's pure SafeLoader and its libyaml CSafeLoader (YAML 1.1, what most
Kubernetes tooling written in Python uses) and ruamel.yaml's pure safe loader (YAML 1.2, as
Go's yaml.v3 and kubectl read). "Exactly" means same types and values: "yes" stays a string,
1.0 stays a float, True stays a bool, -0.0 keeps its sign.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ilab_gitops.emit import yaml_emit
from tests.support.strategies import DERANDOMIZED

TRICKY = (
    "yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "NO", "On", "OFF", "true", "False",
    "null", "Null", "NULL", "~", "", " ", "1e3", "1E3", "1.5", "0o17", "0x1F", "017", "0b101",
    "1_000", "+1", "-1", ".5", "1.", "-", "--", "---", "...", "- x", "-x", ": ", ":", "a:",
    "a: b", "a:b", "a :b", " #", "a #b", "a#b", "#x", "&a", "*a", "!tag", "!!str", "%x", "@x",
    "`x", "{x}", "[x]", "{}", "[]", ",", "?", "? x", "|", ">", "|-", "'", '"', "\\", "'a'",
    '"a"', " a", "a ", "\ta", "a\t", "=", "<<", "2026-11-24", "2026-11-24T10:00:00Z",
    "1:20", "190:20:30", "1:20.5", ".inf", "-.inf", ".Inf", ".NaN", ".nan", "nan", "inf",
    "http://x", "a://b", "x y", "x  y", "😀", "é", "\x85", "a\x85b", "\u2028", "\u2029",
    "\ufeff", "\ufeffa", "\ufffe", "\xa0", "\x00", "\x01", "\x07", "\x1b", "\x7f", "\x9f",
    "\r", "\n", "a\nb", "a\n", "a\n\n", "\na", "a\r\nb", "a\rb", "a\n b", "a \nb",
    "a\n\tb", "\ta\nb", "a\n\nb", "a\n#b", "a\n---\nb", "a\n...\n", "null\n",
    "a\n\ufffe", "line\x85next\n",
)  # fmt: skip
_PIECES = (*TRICKY, "a", "b", "x: 1", " ", "\n", "\r\n", "\t", "#", "\\n", "é", "😀")


def _json_texts() -> st.SearchStrategy[str]:
    """Typical multi-line payloads: pretty-printed JSON, with or without a final newline."""
    values = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )
    return st.builds(
        lambda v, nl: json.dumps(v, indent=2, ensure_ascii=False) + ("\n" if nl else ""),
        values,
        st.booleans(),
    )


STRINGS = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=16),
    st.lists(st.sampled_from(_PIECES), max_size=6).map("".join),
    st.from_regex(r"[A-Za-z_/][A-Za-z0-9_./@=,+:-]{0,12}( [A-Za-z0-9:#-]{1,4})?", fullmatch=True),
    _json_texts(),
)
SCALARS = st.one_of(
    STRINGS,
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(STRINGS, inner, max_size=4)
    ),
    max_leaves=24,
)
DOCUMENTS = st.one_of(st.dictionaries(STRINGS, TREES, max_size=6), st.lists(TREES, max_size=6))

_RUAMEL = YAML(typ="safe", pure=True)
Loader = Callable[[str], Any]


def _pyyaml(text: str) -> Any:
    return yaml.load(text, Loader=yaml.SafeLoader)


def _libyaml(text: str) -> Any:
    if not yaml.__with_libyaml__:  # pragma: no cover - depends on the PyYAML build
        pytest.skip("PyYAML was built without libyaml")
    return yaml.load(text, Loader=yaml.CSafeLoader)


def _ruamel(text: str) -> Any:
    return _RUAMEL.load(text)


LOADERS: dict[str, Loader] = {"pyyaml": _pyyaml, "libyaml": _libyaml, "ruamel-1.2": _ruamel}


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down; floats bit for bit (so -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bool(a.hex() == b.hex())
    if isinstance(a, dict):
        return bool(a.keys() == b.keys()) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _assert_reads_back(document: Any) -> str:
    text = yaml_emit.dump(document)
    for name, load in LOADERS.items():
        loaded = load(text)
        assert same(loaded, document), f"{name} read back {loaded!r}\nfrom:\n{text}"
    return text


# --------------------------------------------------------------------------- round trip


@DERANDOMIZED
@given(DOCUMENTS)
@example({"a\n": None})  # a key ending in a newline was once emitted plain
@example({"no": "0\n\ufffe"})  # a non-character was once put in a | block
@example({"k" * 1100: {"a": 1}})  # implicit keys are limited to 1024 characters
def test_every_document_reads_back_exactly(document: dict[str, Any] | list[Any]) -> None:
    _assert_reads_back(document)


@pytest.mark.parametrize("text", TRICKY, ids=[ascii(t) for t in TRICKY])
def test_each_tricky_string_reads_back_as_key_value_and_item(text: str) -> None:
    _assert_reads_back({text: text, "nested": {text: [text, {text: text}]}, "list": [text]})
    _assert_reads_back([text, [text], {text: text}])


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**64, -(2**100), 0.0, -0.0, 0.1, 1.0, -2.5, 1e16, 1e-7, 1e300, 5e-324,
     1.7976931348623157e308, 2.2250738585072014e-308, 123456789.123456789, True, False, None],
    ids=repr,
)  # fmt: skip
def test_numbers_bools_and_null_read_back_exactly(value: Any) -> None:
    _assert_reads_back({"v": value, "l": [value]})


def test_long_keys_use_explicit_key_syntax() -> None:
    long_key = "k" * 1100
    text = _assert_reads_back(
        {long_key: {"a": 1}, "b": [{long_key: "x\ny", "z": []}], "é" * 1030: "v"}
    )
    assert f"? {long_key}\n:\n  a: 1\n" in text
    assert f"- ? {long_key}\n    : |-\n      x\n      y\n" in text


def test_ruamel_reads_yaml_1_2() -> None:
    """The third reader must really be a YAML 1.2 one, or it adds nothing to PyYAML's two."""
    assert _ruamel("a: yes\nb: 1e3\nc: 0o17\n") == {"a": "yes", "b": 1000.0, "c": 15}
    assert _pyyaml("a: yes\nb: 1e3\n") == {"a": True, "b": "1e3"}


# --------------------------------------------------------------------------- style


def _events(text: str) -> Iterator[yaml.Event]:
    return yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _strings(value: Any) -> Iterator[str]:
    """Every string that is a value (not a key) in `value`."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# Multi-line text any block can hold: visible ASCII lines without leading or trailing
# blanks, no empty line, at most one final newline.
_READABLE = re.compile(r"[!-~](?:[ -~]*[!-~])?(?:\n[!-~](?:[ -~]*[!-~])?)+\n?")


@DERANDOMIZED
@given(DOCUMENTS)
def test_output_is_block_style_with_literal_blocks(document: dict[str, Any] | list[Any]) -> None:
    text = yaml_emit.dump(document)
    events = list(_events(text))
    for event, following in itertools.pairwise(events):
        if isinstance(event, yaml.CollectionStartEvent) and event.flow_style:
            # Only {} and [] are written in flow style.
            assert isinstance(following, yaml.CollectionEndEvent), text
    assert all(not isinstance(e, yaml.DocumentStartEvent) or not e.explicit for e in events)
    literal = {e.value for e in events if isinstance(e, yaml.ScalarEvent) and e.style == "|"}
    for value in _strings(document):
        if _READABLE.fullmatch(value):
            assert value in literal, f"{value!r} is not a | block in:\n{text}"


def test_pretty_json_becomes_a_literal_block() -> None:
    payload = {"stepName": "run-prepare-0123abcd", "attempt": [0, 1], "nested": {"x": None}}
    pretty = json.dumps(payload, indent=2, sort_keys=True)
    text = yaml_emit.dump({"data": {"params.json": pretty + "\n", "raw.json": pretty}})
    assert text.startswith('data:\n  params.json: |\n    {\n      "attempt": [\n')
    assert "\n  raw.json: |-\n    {\n" in text
    assert "\\n" not in text
    assert _pyyaml(text)["data"]["params.json"] == pretty + "\n"


def test_text_a_block_cannot_hold_is_double_quoted() -> None:
    for text in ("a \nb", "a\n\n", " a\nb", "a\r\nb", "a\x85b\n", "a\n\ufffe"):
        out = yaml_emit.dump({"k": text})
        assert out.startswith('k: "'), out
        _assert_reads_back({"k": text})


def test_plain_only_when_unambiguous() -> None:
    assert yaml_emit.dump({"a": "plain/text-1.2_x", "b": "yes", "c": "1.5", "d": ""}) == (
        'a: plain/text-1.2_x\nb: "yes"\nc: "1.5"\nd: ""\n'
    )


def test_keys_are_sorted_and_documents_separated() -> None:
    assert yaml_emit.dump({"b": 1, "a": {"d": [], "c": {}}}) == "a:\n  c: {}\n  d: []\nb: 1\n"
    stream = yaml_emit.dump_all([{"a": 1}, {"b": [1, {"c": 2, "d": 3}]}])
    assert stream == "---\na: 1\n---\nb:\n  - 1\n  - c: 2\n    d: 3\n"
    assert list(yaml.load_all(stream, Loader=yaml.SafeLoader)) == [
        {"a": 1},
        {"b": [1, {"c": 2, "d": 3}]},
    ]
    assert yaml_emit.dump({}) == "{}\n" and yaml_emit.dump([]) == "[]\n"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=repr)
def test_nan_and_infinity_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="NaN and infinity"):
        yaml_emit.dump({"v": value})


@pytest.mark.parametrize(
    "document",
    [{1: "a"}, {"a": (1, 2)}, {"a": b"x"}, {"a": {1, 2}}, {"a": [object()]}],
    ids=["int-key", "tuple", "bytes", "set", "object"],
)
def test_unsupported_values_are_refused(document: dict[Any, Any]) -> None:
    with pytest.raises(TypeError):
        yaml_emit.dump(document)
