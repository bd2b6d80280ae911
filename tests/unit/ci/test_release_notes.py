from __future__ import annotations

from ilab_gitops.results.locations import Links
from ilab_gitops.results.ports import PullRequest, PullState
from ilab_gitops.results.release_notes import (
    previous_run,
    release_tag,
    release_title,
    render_release_notes,
)
from tests.support.results_data import make_results, qna_path

LINKS = Links("https://github.com", "org/runs")


def _pr(number: int, state: PullState = "merged", title: str | None = None) -> PullRequest:
    return PullRequest(
        "org/taxonomy",
        number,
        f"https://github.com/org/taxonomy/pull/{number}",
        state,
        title or f"Add {number}",
        "bob",
        (qna_path(number),),
    )


def test_previous_run_is_the_latest_that_finished_earlier() -> None:
    a = make_results("a", finished="2026-11-01T00:00:00Z")
    b = make_results("b", finished="2026-11-02T00:00:00Z")
    c = make_results("c", finished="2026-11-03T00:00:00Z")
    assert previous_run([a, b, c], c) == b
    assert previous_run([c, b, a], b) == a
    assert previous_run([a, b, c], a) is None


def test_notes_compare_with_base_and_previous_release() -> None:
    previous = make_results("old", finished="2026-11-01T00:00:00Z", mt_branch=(5.0, 5.5), best=7.0)
    current = make_results("new", [1, 2], mt_branch=(5.0, 6.0), mmlu_branch=(0.5, 0.65))
    notes = render_release_notes(current, [_pr(1), _pr(2, "open")], previous, LINKS)
    assert "| MT-Bench (best checkpoint) | — | 7.10 | — | 7.00 | +0.10 |" in notes
    assert "| MT-Bench-Branch | 5.00 | 6.00 | +1.00 | 5.50 | +0.50 |" in notes
    assert "| MMLU-Branch | 0.500 | 0.650 | +0.150 | 0.600 | +0.050 |" in notes
    assert "- [#1](https://github.com/org/taxonomy/pull/1) Add 1 by @bob\n" in notes
    assert "- [#2](https://github.com/org/taxonomy/pull/2) Add 2 by @bob (open)\n" in notes
    assert (
        f"| `{qna_path(1)}` | [#1](https://github.com/org/taxonomy/pull/1) | "
        "4.00 → 7.00 (+3.00) | 0.400 → 0.500 (+0.100) |"
    ) in notes
    assert (
        "[example\\-org\\/granite\\-7b\\-lab\\@\u200brelease\\-new](https://huggingface.co/"
    ) in notes


def test_unknown_and_missing_prs_are_listed_by_link() -> None:
    prs = [
        PullRequest("org/taxonomy", 7, "https://github.com/org/taxonomy/pull/7"),
        PullRequest("org/taxonomy", 8, "https://github.com/org/taxonomy/pull/8", "missing"),
    ]
    notes = render_release_notes(make_results("r", [7, 8]), prs, None, LINKS)
    assert "- [#7](https://github.com/org/taxonomy/pull/7)\n" in notes
    assert "- [#8](https://github.com/org/taxonomy/pull/8) (no longer on GitHub)\n" in notes
    assert "Previous release (none)" in notes


def test_500_prs_stay_under_the_release_limit() -> None:
    prs = [_pr(n, title="x" * 300) for n in range(1, 501)]
    notes = render_release_notes(make_results("r", range(1, 501)), prs, None, LINKS, budget=20_000)
    assert len(notes.encode()) <= 20_000
    assert "Shortened to stay under GitHub's size limit" in notes


def test_tag_and_title() -> None:
    results = make_results("granite-a")
    assert (release_tag("granite-a"), release_title(results)) == (
        "granite-a",
        "granite-a (2026-11-24)",
    )
