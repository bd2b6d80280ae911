"""Hostile names and values reaching what we post to GitHub stay inert.

A PR author controls file names, taxonomy paths, field values and (through them) messages;
a PR title and the results data carry text too. Each consumer is rendered here by GitHub's
own Markdown renderer (cmark-gfm) or parsed as the Actions runner reads a log line: no tag
but ours, no link but ours, nothing GitHub's filters would ping or cross-reference, no
broken table, and the hostile characters still visible to the reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ilab_gitops import ghtext
from ilab_gitops.diagnostics import Diagnostic, format_diagnostics
from ilab_gitops.results.changelog import changelog_entry
from ilab_gitops.results.comment import render_comment
from ilab_gitops.results.locations import Links
from ilab_gitops.results.ports import PullRequest
from ilab_gitops.results.release_notes import render_release_notes
from ilab_gitops.runsrepo.classify import DiffReport, Reason, RunDiff
from ilab_gitops.runsrepo.comment import pr_comment
from tests.support.actions import is_command, parse_command
from tests.support.gfm import ACTIVE_TEXT, Page, read_markdown
from tests.support.results_data import make_results, qna_file
from tests.unit.repo.specs import diff, example_run

HOSTILE = [
    "x\n::add-mask::secret",
    "<img src=x onerror=alert(1)>",
    "</details></summary><script>alert(1)</script>",
    "```\n# owned\n```",
    "a | b | c\n| --- |",
    "[click](https://evil.example) ![i](https://evil.example/i.png)",
    "www.evil.example http://evil.example a@evil.example",
    "@octocat @org/team #1 GH-2 other/repo#3 :octocat:",
    "**bold** _i_ ~~s~~ \\",
    "\u202egnp.exe\u202c",
]
LINKS = Links("https://github.com", "example-org/runs")
OURS = ("https://github.com/", "https://huggingface.co/")
# Tags our templates write; anything else came from a value.
ALLOWED = {
    "h2", "h3", "h4", "h5", "p", "strong", "em", "code", "a", "table", "thead", "tbody", "tr",
    "th", "td", "ul", "li", "details", "summary", "blockquote", "hr", "sub",
}  # fmt: skip


def assert_inert(page: Page, hostile: str) -> None:
    assert set(page.tags) <= ALLOWED, page.tags
    assert "img" not in page.tags and "script" not in page.tags
    for tag, attrs in page.attrs:
        if tag == "a":
            assert str(attrs.get("href", "")).startswith(OURS), attrs
    assert not ACTIVE_TEXT.search(page.plain), page.plain
    assert ghtext.visible(hostile) in page.seen()


def table_widths(markdown: str) -> set[int]:
    """Cells per row of every table, counting `|` the way the table extension splits."""
    widths = set()
    for row in markdown.splitlines():
        if row.startswith("| "):
            widths.add(len(re.findall(r"(?<!\\)\|", row)) - 1)
    return widths


@pytest.mark.parametrize("hostile", HOSTILE)
def test_pr_comment(hostile: str) -> None:
    reason = Reason("spec", f"spec.{hostile}", hostile, hostile, f"runs/{hostile}.yaml:3:4")
    diagnostic = Diagnostic(f"runs/{hostile}.yaml", 3, 4, "invalid", f"spec.{hostile}", hostile)
    run = RunDiff(
        hostile,
        f"runs/{hostile}.yaml",
        "rerun",
        notes=(hostile,),
        reasons=(reason,),
        violations=(diagnostic,),
    )
    body = pr_comment(DiffReport(hostile, (run,), diagnostics=(diagnostic,)))
    page = read_markdown(body)
    assert_inert(page, hostile)
    assert page.tags.count("details") == 1 and page.tags.count("summary") == 1
    assert body.splitlines()[0] == "<!-- ilab-gitops:pr-summary -->"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_results_comment_release_notes_and_changelog(hostile: str) -> None:
    path = f"compositional_skills/{hostile}/qna.yaml"
    results = make_results("granite-a", [1], files=[qna_file(path, 2, text=hostile + " {n}")])
    pr = PullRequest(
        "example-org/taxonomy",
        1,
        "https://github.com/example-org/taxonomy/pull/1",
        "merged",
        hostile,
        hostile,  # not a GitHub login: shown as text, never as a mention
        (path,),
    )
    comment = render_comment(results, pr, LINKS)
    assert_inert(read_markdown(comment), hostile)
    assert table_widths(comment) == {4, 5}

    notes = render_release_notes(results, [pr], None, LINKS)
    assert_inert(read_markdown(notes), hostile)
    assert table_widths(notes) == {6, 4}

    entry = changelog_entry(results, notes, LINKS)
    assert_inert(read_markdown(entry), hostile)


def test_a_link_to_anything_but_http_is_not_a_link() -> None:
    pr = PullRequest("o/t", 1, "javascript:alert(1)", "merged", "t", "octocat", ())
    notes = render_release_notes(make_results("granite-a", [1]), [pr], None, LINKS)
    page = read_markdown(notes)
    assert all(not str(a.get("href")).startswith("javascript") for _, a in page.attrs)
    assert "#\u200b1 t by @octocat" in notes


@pytest.mark.parametrize("hostile", HOSTILE)
def test_annotations_and_text_diagnostics(hostile: str) -> None:
    diagnostic = Diagnostic(f"runs/{hostile}.yaml", 3, 4, "invalid", f"spec.{hostile}", hostile)
    (text_line,) = format_diagnostics([diagnostic], "text").splitlines()
    assert not is_command(text_line)
    assert text_line.endswith(" " + ghtext.line(hostile))
    (annotation,) = format_diagnostics([diagnostic], "github").splitlines()
    name, props, message = parse_command(annotation)
    assert (name, props["file"], props["line"], props["col"]) == (
        "error",
        diagnostic.path,
        "3",
        "4",
    )
    assert message == ghtext.line(hostile) and "\n" not in message


@pytest.mark.parametrize(
    "name",
    ["runs/<img src=x> @octocat #1 | x.yaml", "runs/``` [a](www.evil.example) :+1:.yaml"],
)
def test_hostile_file_names_through_diff(tmp_path: Path, name: str) -> None:
    report = diff(tmp_path, {}, {name: example_run(), "runs/ok.yaml": example_run("granite-b")})
    body = pr_comment(report)
    page = read_markdown(body)
    assert set(page.tags) <= ALLOWED, page.tags
    assert not [a for tag, a in page.attrs if tag == "a"]
    assert not ACTIVE_TEXT.search(page.plain), page.plain
    assert ghtext.visible(name) in page.code
    for line in format_diagnostics(list(report.diagnostics), "text").splitlines():
        assert not is_command(line)
