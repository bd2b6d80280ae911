from __future__ import annotations

import re

from ilab_gitops.results.comment import is_marked, marker, render_comment
from ilab_gitops.results.locations import Links
from ilab_gitops.results.ports import PullRequest
from ilab_gitops.results.truncate import GITHUB_COMMENT_LIMIT
from tests.support.results_data import make_results, qna_file, qna_path

LINKS = Links("https://github.com", "org/runs")


def _pr(number: int, files: tuple[str, ...]) -> PullRequest:
    return PullRequest(
        "org/taxonomy",
        number,
        f"https://github.com/org/taxonomy/pull/{number}",
        "open",
        "t",
        "alice",
        files,
    )


def test_comment_shows_only_the_prs_own_questions() -> None:
    results = make_results("r1", [1, 2])
    body = render_comment(results, _pr(1, (qna_path(1), "README.md")), LINKS)
    assert body.splitlines()[0] == marker("r1")
    assert qna_path(1) in body and qna_path(2) not in body
    assert "| MT-Bench-Branch | 5.00 | 6.00 | +1.00 |" in body
    assert "| MMLU-Branch | 0.500 | 0.600 | +0.100 |" in body
    assert "| 1 | What is 1\\? | 3.00 | 8.00 | +5.00 |" in body
    assert "[all results](https://github.com/org/runs/blob/main/results/r1.json)" in body


def test_comment_for_a_pr_without_scored_files_says_so() -> None:
    body = render_comment(make_results("r1", [1]), _pr(1, ("docs/x.md",)), LINKS)
    assert "No qna.yaml file changed by this pull request has scores" in body
    assert "| # | Question |" not in body


def test_comment_is_rendered_the_same_twice() -> None:
    results, pr = make_results("r1", [1]), _pr(1, (qna_path(1),))
    assert render_comment(results, pr, LINKS) == render_comment(results, pr, LINKS)


def test_huge_results_are_cut_below_the_limit_with_a_note() -> None:
    files = [qna_file(qna_path(1, i), 300, text="Q{n} " + "é" * 250) for i in range(5)]
    results = make_results("r1", [1], files=files)
    body = render_comment(results, _pr(1, tuple(f.path for f in files)), LINKS)
    assert len(body.encode()) <= 60_000 < GITHUB_COMMENT_LIMIT
    assert body.startswith(marker("r1") + "\n")
    shown = len(re.findall(r"^\| [0-9]+ \| Q", body, re.MULTILINE))
    assert f"{1500 - shown} more row(s) not shown, including 4 whole file(s)." in body
    assert 100 < shown < 1500
    assert body.rstrip().endswith("</sub>")
    for line in body.splitlines():
        assert not line.startswith("|") or line.endswith("|")


def test_is_marked_needs_the_exact_first_line() -> None:
    assert is_marked(marker("r1") + "\nbody", "r1")
    assert not is_marked(marker("r10") + "\nbody", "r1")
    assert not is_marked("> " + marker("r1"), "r1")
