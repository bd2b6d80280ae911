from __future__ import annotations

import pytest

from ilab_gitops.results import markdown as md


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [(5.0, 6.0, "+1.00"), (6.0, 5.5, "-0.50"), (5.0, 5.001, "±0.00"), (None, 1.0, "—")],
)
def test_delta(before: float | None, after: float | None, expected: str) -> None:
    assert md.delta(before, after) == expected


def test_change_and_table() -> None:
    assert md.change(0.5, 0.6, 3) == "0.500 → 0.600 (+0.100)"
    assert md.table(["a", "b"], "lr", [["1", "2"]]) == ["| a | b |", "| --- | ---: |", "| 1 | 2 |"]
