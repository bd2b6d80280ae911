"""The HTML report: self-contained, escaped, honest about what is missing."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from ilab_gitops.report.build import build
from ilab_gitops.report.inputs import load
from ilab_gitops.report.page import CSP, SCRIPT, render_page
from tests.support.report_data import (
    RUN,
    finished_results,
    hostile_qna,
    write_failed_in_phase_2,
    write_finished,
)


class _Collect(HTMLParser):
    """Every tag with its attributes, and the text of script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_finished_run_page_has_every_section(tmp_path: Path) -> None:
    report = build(write_finished(tmp_path / "r"), RUN)
    html = report.html
    for heading in ("Summary", "Plots", "Scores", "Step timeline", "The spec"):
        assert f"<h2>{heading}</h2>" in html
    assert '<span class="state ok">finished</span>' in html
    assert "Missing data" not in html
    assert 'href="https://github.com/example-org/taxonomy/pull/1412"' in html
    assert (
        'href="https://huggingface.co/example-org/granite-7b-lab/tree/release-granite-20261124"'
        in html
    )
    assert "s3://models/ilab-runs/kind/ilab-dev/granite-20261124/model" in html
    assert "samples_115200 ★ chosen" in html
    assert "pullRequests: [1412, 1420, 1433]" in html  # the spec as it was
    # the timeline: seven finished steps, the time between phase 1 and phase 2's finish
    assert html.count("<td>finished</td>") == 7
    assert "11 h 30 min" in html


def test_plots_are_inline_data_uris_of_the_rendered_pngs(tmp_path: Path) -> None:
    report = build(write_finished(tmp_path / "r"), RUN)
    images = [a for tag, a in _parse(report.html).tags if tag == "img"]
    assert len(images) == 3
    for attrs, plot in zip(images, report.plots, strict=True):
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == plot.png
        assert attrs["alt"] == plot.alt


def test_nothing_is_loaded_from_the_network(tmp_path: Path) -> None:
    html = build(write_finished(tmp_path / "r"), RUN).html
    parsed = _parse(html)
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is None:
                continue
            if tag == "a":
                assert value.startswith("https://")
            else:
                assert value.startswith("data:image/png;base64,"), (tag, name)
    assert not re.search(r"@import|url\(|@font-face", html)
    assert all(tag != "link" for tag, _ in parsed.tags)
    script_tags = [a for tag, a in parsed.tags if tag == "script"]
    assert script_tags == [{}]  # one inline script, no src


def test_csp_allows_exactly_the_inline_script(tmp_path: Path) -> None:
    html = build(write_finished(tmp_path / "r"), RUN).html
    parsed = _parse(html)
    metas = [a for tag, a in parsed.tags if tag == "meta" and a.get("http-equiv")]
    assert metas[0]["content"] == CSP
    assert "default-src 'none'" in CSP
    assert parsed.scripts == [SCRIPT]
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CSP


def test_page_has_print_css(tmp_path: Path) -> None:
    html = build(write_finished(tmp_path / "r"), RUN).html
    assert "@media print" in html
    assert "break-inside: avoid" in html


def test_same_folder_gives_the_same_bytes(tmp_path: Path) -> None:
    folder = write_finished(tmp_path / "r")
    assert build(folder, RUN).html == build(folder, RUN).html


def test_failed_in_phase_2_says_what_is_missing(tmp_path: Path) -> None:
    report = build(write_failed_in_phase_2(tmp_path / "r"), RUN)
    html = report.html
    assert '<span class="state partial">incomplete</span>' in html
    assert "Missing data" in html
    assert "The run has no results.json" in html
    assert "No MT-Bench scores: the eval-mt-bench step has not finished." in html
    assert (
        "Steps without a done marker: train-phase-2, eval-mt-bench, eval-final, upload, publish."
        in html
    )
    assert "train-phase-2: 1 metrics line(s) were unreadable" in html  # the cut last line
    assert html.count("<td>finished</td>") == 2
    assert html.count("<td>not finished</td>") == 5
    # PR links still come from the spec
    assert 'href="https://github.com/example-org/taxonomy/pull/1433"' in html
    assert [p.has_data for p in report.plots] == [True, False, False]


HOSTILE = [
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "&lt;already&gt; & <b>bold</b>",
    "</pre></table><iframe src=//evil>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_untrusted_strings_are_escaped(tmp_path: Path, text: str) -> None:
    results = finished_results().model_copy(
        update={
            "qnaFiles": [hostile_qna(text)],
            "baseModel": text,
            "cluster": text,
            "candidateCheckpoint": text,
        }
    )
    folder = write_finished(tmp_path / "r")
    (folder / "results.json").write_text(results.model_dump_json())
    (folder / "spec.yaml").write_text(f"# {text}\nmetadata: {{name: {RUN}}}\n")
    html = build(folder, RUN).html
    parsed = _parse(html)
    assert text not in html or ("<" not in text and '"' not in text)
    assert all(tag not in {"iframe", "b"} for tag, _ in parsed.tags)
    assert len([t for t, _ in parsed.tags if t == "img"]) == 3
    assert len(parsed.scripts) == 1
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs)


def test_links_only_for_https(tmp_path: Path) -> None:
    results = finished_results()
    model = results.model.model_copy(update={"huggingFaceUrl": "javascript:alert(1)"})
    taxonomy = results.taxonomy.model_copy(update={"repoUrl": "javascript:alert(2)//"})
    folder = write_finished(tmp_path / "r")
    (folder / "results.json").write_text(
        results.model_copy(update={"model": model, "taxonomy": taxonomy}).model_dump_json()
    )
    data = load(folder, RUN)
    html = render_page(data, [])
    assert "javascript:" not in "".join(
        str(a.get("href")) for t, a in _parse(html).tags if t == "a"
    )
    assert "#1412" in html  # still named, without a link
