"""sources.parse_yaml: YAML 1.2 core scalars, positions, limits and located load errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from ilab_gitops.load.sources import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_STRING_CHARS,
    LoadError,
    Position,
    dotted,
    parse_yaml,
    quote,
)


def value(scalar: str) -> Any:
    return parse_yaml(f"v: {scalar}\n".encode(), "x.yaml").data["v"]


def load_error(text: str | bytes) -> str:
    """The one diagnostic of an invalid file, as text."""
    raw = text.encode() if isinstance(text, str) else text
    with pytest.raises(LoadError) as caught:
        parse_yaml(raw, "x.yaml")
    return caught.value.diagnostic.as_text()


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("Off", "Off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("2e-5", 2e-5),
        ("6e-6", 6e-6),
        ("1E3", 1000.0),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("0o17", 15),
        ("0x1f", 31),
        ("010", 10),
        ("+7", 7),
        ("-3", -3),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("1:30", "1:30"),
        ("2026-11-24", "2026-11-24"),
        ("~", None),
        ("null", None),
        ("", None),
        ('"123"', "123"),
        ("'true'", "true"),
        ("!!str 123", "123"),
        ("!!float 1", 1.0),
        ("!!int 7", 7),
        ("1.30", 1.3),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(scalar: str, expected: object) -> None:
    got = value(scalar)
    assert got == expected
    assert type(got) is type(expected)


def test_integers_must_fit_in_64_bits() -> None:
    assert value(str(2**64 - 1)) == 2**64 - 1
    assert value("0x" + "f" * 16) == 2**64 - 1
    assert value("-" + str(2**64 - 1)) == -(2**64 - 1)
    big = "9" * 5000  # past Python's 4300-digit limit for int(str)
    assert load_error(f"a: {big}\n") == (
        f'x.yaml:1:4: error[number-too-large] a: integer "{"9" * 27}..." is too large; '
        "numbers in a spec fit in 64 bits"
    )
    assert "error[number-too-large]" in load_error(f"a: {2**64}\n")
    assert "error[number-too-large]" in load_error("a: 0x" + "f" * 300 + "\n")


def test_special_floats() -> None:
    assert value(".inf") == math.inf
    assert value("-.Inf") == -math.inf
    assert math.isnan(value(".nan"))


def test_pyyaml_itself_is_left_untouched() -> None:
    parse_yaml(b"v: yes\n", "x.yaml")
    assert yaml.safe_load("v: yes\n") == {"v": True}


def test_positions_are_one_based_for_keys_and_values() -> None:
    doc = parse_yaml(b"a:\n  b: [1, 22]\n  c: {d: x}\n", "runs/r.yaml")
    assert doc.path == "runs/r.yaml"
    assert doc.data == {"a": {"b": [1, 22], "c": {"d": "x"}}}
    smap = doc.source_map
    assert smap.keys[("a",)] == Position(1, 1)
    assert smap.keys[("a", "b")] == Position(2, 3)
    assert smap.values[("a", "b")] == Position(2, 6)
    assert smap.values[("a", "b", 1)] == Position(2, 10)
    assert smap.keys[("a", "c", "d")] == Position(3, 7)
    assert smap.values[("a", "c", "d")] == Position(3, 10)


def test_positions_count_lines_as_editors_do() -> None:
    # PyYAML also breaks lines at U+2028; editors and GitHub do not.
    doc = parse_yaml('a: "x\u2028y"\r\nb: [1, 2]\rc: 3\n'.encode(), "x.yaml")
    assert doc.data == {"a": "x\u2028y", "b": [1, 2], "c": 3}
    assert doc.source_map.values[("b", 1)] == Position(2, 8)
    assert doc.source_map.keys[("c",)] == Position(3, 1)


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    smap = parse_yaml(b"a:\n  b: 1\n", "x.yaml").source_map
    assert smap.locate(("a", "b", "missing")) == Position(2, 6)
    assert smap.locate(("a", "missing"), key=True) == Position(1, 1)
    assert smap.locate(("a", "b"), key=True) == Position(2, 3)
    assert smap.locate(("nothing",)) == Position(1, 1)


def test_a_byte_order_mark_is_ignored() -> None:
    assert parse_yaml(b"\xef\xbb\xbfa: 1\n", "x.yaml").data == {"a": 1}


def test_a_lone_trailing_document_marker_is_harmless() -> None:
    assert parse_yaml(b"---\na: 1\n---\n", "x.yaml").data == {"a": 1}


TAB = "tab character; YAML must be indented with spaces, not tabs"
MAPPING = "expected a mapping (key: value) holding one PipelineRun or Environment"
NOT_SUPPORTED = "is not supported; specs hold plain values"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: 1\nb: 2\na: 3\n",
            '3:1: error[duplicate-key] a: duplicate key "a" (first defined at line 1)',
        ),
        (
            'a:\n  "b\\nc": 1\n  "b\\nc": 2\n',
            '3:3: error[duplicate-key] a["b\\nc"]: duplicate key "b\\nc" (first defined at line 2)',
        ),
        ("a:\n  b: 1\n\tc: 2\n", f"3:1: error[yaml-tab] {TAB}"),
        ("a:\n  b: 1\n  \tc: 2\n", f"3:3: error[yaml-tab] {TAB}"),
        (
            "a: {b: 1\nc: 2\n",
            '2:2: error[yaml-syntax] expected "," or "}": '
            'the "{" at line 1, column 4 is not closed',
        ),
        (
            "a: [1, 2\nc: 2\n",
            '2:2: error[yaml-syntax] expected "," or "]": '
            'the "[" at line 1, column 4 is not closed',
        ),
        (
            "a: 'abc\nb: 1\n",
            "3:1: error[yaml-syntax] the quoted string that starts at line 1, column 4 "
            "is never closed",
        ),
        ("a: @b\n", '1:4: error[yaml-syntax] "@" cannot start a value; put the value in quotes'),
        (
            'a: "\\q"\n',
            "1:5: error[yaml-syntax] unknown escape sequence in a double-quoted string; "
            'use single quotes, or write "\\\\"',
        ),
        (
            "a: 1\n---\nb: 2\n",
            "2:1: error[multiple-documents] a second YAML document starts here; "
            "put one spec in each file",
        ),
        ("", "1:1: error[empty-file] file is empty; expected one YAML mapping"),
        (" \n\n", "1:1: error[empty-file] file is empty; expected one YAML mapping"),
        (
            "# only\n# comments\n",
            "1:1: error[empty-file] file holds only comments; expected one YAML mapping",
        ),
        ("---\n", "2:1: error[empty-file] the document is empty (null); expected one YAML mapping"),
        ("- a\n- b\n", f"1:1: error[not-a-mapping] the document is a list; {MAPPING}"),
        ("just text\n", f"1:1: error[not-a-mapping] the document is a single value; {MAPPING}"),
        (
            "a: *x\n",
            '1:4: error[yaml-alias] a: alias "*x" is not defined; '
            'an anchor "&x" must come before it',
        ),
        (
            "a: &x [1, *x]\n",
            '1:11: error[yaml-alias] a[1]: alias "*x" refers to a collection that contains it',
        ),
        (
            "a: &x 1\nb: &x 2\n",
            '2:4: error[yaml-alias] b: anchor "&x" is already defined at line 1; '
            "give each anchor its own name",
        ),
        (
            "a: &x {b: 1}\nc:\n  <<: *x\n",
            '3:3: error[bad-key] c: merge keys ("<<") are not supported; write each value out',
        ),
        ("? [a]\n: 1\n", "1:3: error[bad-key] mapping keys must be plain strings"),
        (
            "a: !!python/object/apply:os.system [ls]\n",
            '1:4: error[unsupported-tag] a: YAML tag "!!python/object/apply:os.system" '
            + NOT_SUPPORTED,
        ),
        ("a: !Ref b\n", f'1:4: error[unsupported-tag] a: YAML tag "!Ref" {NOT_SUPPORTED}'),
        ("a: !!set {b}\n", f'1:4: error[unsupported-tag] a: YAML tag "!!set" {NOT_SUPPORTED}'),
        (
            "a: !!int abc\n",
            '1:4: error[unsupported-tag] a: YAML tag "!!int" does not fit the value "abc"',
        ),
    ],
)
def test_load_errors_are_located(text: str, expected: str) -> None:
    assert load_error(text) == f"x.yaml:{expected}"


def test_non_utf8_is_located_at_the_first_bad_byte() -> None:
    # "é" is two bytes in UTF-8 but one column; the stray Latin-1 byte follows it.
    raw = "a: 1\nb: é".encode() + b"\xff\n"
    assert load_error(raw) == (
        "x.yaml:2:5: error[not-utf8] byte 0xff is not valid UTF-8; save the file as UTF-8"
    )


def test_control_characters_are_located() -> None:
    # The C reader counts UTF-8 bytes; the column counts characters ("é" is one).
    assert load_error("a: é\x03\n".encode()) == (
        "x.yaml:1:5: error[yaml-syntax] control characters are not allowed: found U+0003; remove it"
    )


def test_file_size_limit() -> None:
    at_limit = b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 6) + b"\n"
    assert len(at_limit) == MAX_FILE_BYTES
    assert parse_yaml(at_limit, "x.yaml").data == {"a": 1}
    assert load_error(at_limit + b"\n") == (
        f"x.yaml:1:1: error[file-too-large] file is {MAX_FILE_BYTES + 1} bytes; "
        f"the limit is {MAX_FILE_BYTES} bytes"
    )


def test_string_length_limit() -> None:
    ok = "x" * MAX_STRING_CHARS
    assert parse_yaml(f"a: {ok}\n".encode(), "x.yaml").data == {"a": ok}
    assert load_error(f"a:\n  b: {ok}y\n") == (
        f"x.yaml:2:6: error[string-too-long] a.b: string of {MAX_STRING_CHARS + 1} characters "
        f"exceeds the limit of {MAX_STRING_CHARS}"
    )


def _nested(levels: int) -> str:
    return "a: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


def test_nesting_limit() -> None:
    parse_yaml(_nested(MAX_DEPTH).encode(), "x.yaml")  # the root mapping is one level
    assert load_error(_nested(MAX_DEPTH + 1)) == (
        f"x.yaml:1:{3 + MAX_DEPTH}: error[too-deep] "
        f"more than {MAX_DEPTH} levels of nested mappings and lists"
    )


def test_nesting_through_aliases_is_limited_too() -> None:
    # 15 levels around an alias to 20 levels: reported inside the anchored collection, at the
    # first list that would be the 33rd level.
    deep = "[" * 20 + "]" * 20
    assert load_error(f"a: &x {deep}\nb: {'[' * 15}*x{']' * 15}\n") == (
        f"x.yaml:1:23: error[too-deep] more than {MAX_DEPTH} levels of nested mappings and lists"
    )


def test_value_limit_counts_keys_and_values() -> None:
    items = ", ".join(["1"] * (MAX_NODES - 3))  # + root mapping, key "a", the list
    parse_yaml(f"a: [{items}]\n".encode(), "x.yaml")
    assert "error[too-many-nodes] a[" in load_error(f"a: [{items}, 1]\n")


def test_alias_bomb_stops_at_the_alias() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    message = load_error("\n".join(lines) + "\n")
    assert message == (
        'x.yaml:5:12: error[too-many-nodes] e[1]: alias "*d" expands to 7381 values, '
        f"taking the document past the limit of {MAX_NODES}"
    )


def test_deep_nesting_is_a_located_error_not_a_crash() -> None:
    # 200 KB of brackets crashed the C composer (segmentation fault) before the scan existed.
    message = load_error(_nested(100_000))
    assert "error[too-deep]" in message


def test_a_valid_file_with_aliases_loads() -> None:
    doc = parse_yaml(b"a: &p {x: 1}\nb: *p\n", "x.yaml")
    assert doc.data == {"a": {"x": 1}, "b": {"x": 1}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), ""),
        (("spec", "training", "nnodes"), "spec.training.nnodes"),
        (("spec", "tolerations", 0, "key"), "spec.tolerations[0].key"),
        (("spec", "a b"), 'spec["a b"]'),
        (("a.b",), '["a.b"]'),
    ],
)
def test_dotted(path: tuple[str | int, ...], expected: str) -> None:
    assert dotted(path) == expected


def test_quote_escapes_and_shortens() -> None:
    assert quote('a"b\nc') == '"a\\"b\\nc"'
    assert quote("é") == '"é"'
    assert quote("x" * 100, 10) == '"xxxxxxx..."'
