"""Diagnostics: one text format, GitHub annotations with their escaping, JSON."""

from __future__ import annotations

import json

from ilab_gitops.diagnostics import Diagnostic, format_diagnostics, sort_diagnostics

FIELD = Diagnostic("runs/r1.yaml", 14, 7, "unknown-field", "spec.x.y", 'unknown field "y"')
FILE = Diagnostic("runs/r1.yaml", 1, 1, "empty-file", "", "file is empty")


def test_text_names_file_line_column_code_field_and_message() -> None:
    assert FIELD.as_text() == (
        'runs/r1.yaml:14:7: error[unknown-field] spec.x.y: unknown field "y"'
    )
    assert FILE.as_text() == "runs/r1.yaml:1:1: error[empty-file] file is empty"


def test_warning_severity_is_shown() -> None:
    warning = Diagnostic("a.yaml", 2, 3, "deprecated", "spec.a", "old", severity="warning")
    assert warning.as_text() == "a.yaml:2:3: warning[deprecated] spec.a: old"
    assert warning.as_github().startswith("::warning file=a.yaml,line=2,col=3,")


def test_github_annotation() -> None:
    assert FIELD.as_github() == (
        '::error file=runs/r1.yaml,line=14,col=7,title=unknown-field spec.x.y::unknown field "y"'
    )
    assert FILE.as_github() == (
        "::error file=runs/r1.yaml,line=1,col=1,title=empty-file::file is empty"
    )


def test_github_escapes_properties_and_message() -> None:
    odd = Diagnostic("dir,x/a:b%.yaml", 3, 4, "code", 'f["a,b:c"]', "50% done\r\nnext: a, b")
    assert odd.as_github() == (
        "::error file=dir%2Cx/a%3Ab%25.yaml,line=3,col=4,"
        'title=code f["a%2Cb%3Ac"]::50%25 done\\x0d\\x0anext: a, b'
    )


def test_a_diagnostic_is_one_line_that_no_runner_reads_as_a_command() -> None:
    sneaky = Diagnostic("::warning::x\n::add-mask::y", 1, 2, "c", "f\rg", "m ##[error]\nz")
    assert sneaky.as_text() == (
        "\\x3a:warning::x\\x0a::add-mask::y:1:2: error[c] f\\x0dg: m #\\x23[error]\\x0az"
    )
    assert sneaky.as_github() == (
        "::error file=%3A%3Awarning%3A%3Ax%0A%3A%3Aadd-mask%3A%3Ay,line=1,col=2,"
        "title=c f\\x0dg::m #\\x23[error]\\x0az"
    )


def test_github_message_escapes_percent_before_newlines() -> None:
    # A literal "%0A" in a message must not turn into a line break; a real one is shown.
    assert Diagnostic("a", 1, 1, "c", "", "%0A\n").as_github().endswith("::%250A\\x0a")


def test_json_holds_every_field() -> None:
    text = format_diagnostics([FIELD], "json")
    assert text.endswith("\n")
    assert json.loads(text) == [
        {
            "path": "runs/r1.yaml",
            "line": 14,
            "column": 7,
            "severity": "error",
            "code": "unknown-field",
            "field": "spec.x.y",
            "message": 'unknown field "y"',
        }
    ]


def test_formats_of_no_diagnostics() -> None:
    assert format_diagnostics([], "text") == ""
    assert format_diagnostics([], "github") == ""
    assert format_diagnostics([], "json") == "[]\n"


def test_text_and_github_print_one_line_each() -> None:
    assert format_diagnostics([FILE, FIELD], "text") == (
        FILE.as_text() + "\n" + FIELD.as_text() + "\n"
    )
    assert format_diagnostics([FILE, FIELD], "github").splitlines() == [
        FILE.as_github(),
        FIELD.as_github(),
    ]


def test_sort_orders_by_file_then_position_and_drops_duplicates() -> None:
    later = Diagnostic("runs/r1.yaml", 14, 2, "b", "", "m")
    other = Diagnostic("environments/e.yaml", 99, 1, "c", "", "m")
    line_10 = Diagnostic("runs/r1.yaml", 10, 30, "d", "", "m")
    assert sort_diagnostics([FIELD, later, FIELD, other, line_10]) == [other, line_10, later, FIELD]
