from __future__ import annotations

from collections import Counter
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from ilab_gitops.results import truncate
from ilab_gitops.results.truncate import Omitted, Section, fit, hard_cut, size


def _note(omitted: Omitted) -> str:
    return f"[-{omitted.rows}/{omitted.sections}]\n"


def test_everything_fits_without_a_note() -> None:
    sections = [Section("## a\n", ["1\n", "2\n"])]
    assert fit("head\n", sections, "tail\n", 100, _note) == "head\n## a\n1\n2\ntail\n"


def test_rows_are_dropped_from_the_end_and_counted() -> None:
    sections = [Section("## a\n", ["row 1\n", "row 2\n"]), Section("## b\n", ["row 3\n"])]
    text = fit("head\n", sections, "tail\n", 35, _note)
    assert text == "head\n## a\nrow 1\n[-2/1]\ntail\n"


def test_a_heading_without_rows_is_not_shown() -> None:
    sections = [Section("## a heading that is long\n", ["a row that is long too\n"])]
    text = fit("h\n", sections, "t\n", 50, _note)
    assert text == "h\n[-1/1]\nt\n"


def test_hard_cut_stays_below_the_budget_at_a_line_boundary() -> None:
    cut = hard_cut("line one\nline two é\n" * 50, 60)
    assert size(cut) <= 60
    assert cut.endswith("…(truncated)\n")
    assert all(line.startswith(("line", "…")) for line in cut.splitlines() if line)


def test_never_over_budget_on_every_path() -> None:
    """Over generated documents: never over budget, head and tail kept when they fit, and
    each of fit's three outcomes (all fits, rows dropped, hard cut) is reached."""
    reached: Counter[str] = Counter()

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(
        head=st.text(max_size=300),
        rows=st.lists(st.lists(st.text(min_size=0, max_size=80), max_size=20), max_size=10),
        tail=st.sampled_from(["tail\n", "a longer tail of the document\n" * 4]),
        budget=st.integers(min_value=50, max_value=3000),
    )
    def never_over_budget(head: str, rows: list[list[str]], tail: str, budget: int) -> None:
        sections = [Section(f"## {i}\n", [r + "\n" for r in rs]) for i, rs in enumerate(rows)]
        with mock.patch.object(truncate, "hard_cut", wraps=truncate.hard_cut) as cut:
            text = fit(head, sections, tail, budget, _note)
        assert size(text) <= budget
        whole = head + "".join(s.heading + "".join(s.rows) for s in sections) + tail
        if cut.called:
            reached["hard cut"] += 1
            assert text.endswith("…(truncated)\n")
        elif text == whole:
            reached["fits"] += 1
        else:
            reached["rows dropped"] += 1
            assert text.startswith(head) and text.endswith(tail)
            assert "[-" in text  # the omission note
        if size(head) + size(tail) + 20 <= budget:
            assert text.startswith(head) and text.endswith(tail)

    never_over_budget()
    assert set(reached) == {"fits", "rows dropped", "hard cut"}, reached
