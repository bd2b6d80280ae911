from __future__ import annotations

from ilab_gitops.results.changelog import PREAMBLE, changelog_entry, update_changelog
from ilab_gitops.results.locations import Links
from tests.support.results_data import make_results

LINKS = Links("https://github.com", "org/runs")


def _entry(run: str, text: str = "notes") -> str:
    return changelog_entry(make_results(run), text, LINKS)


def test_entry_has_markers_and_a_linked_heading() -> None:
    assert _entry("r1") == (
        "<!-- ilab-gitops:changelog run=r1 -->\n"
        "## [r1](https://github.com/org/runs/releases/tag/r1) — 2026-11-24\n\n"
        "notes\n"
        "<!-- /ilab-gitops:changelog run=r1 -->\n"
    )


def test_a_new_file_starts_with_the_preamble() -> None:
    assert update_changelog(None, "r1", _entry("r1")) == PREAMBLE + "\n" + _entry("r1")


def test_new_entries_go_above_older_ones_and_human_text_stays() -> None:
    text = update_changelog("# Our log\n\nWritten by hand.\n", "r1", _entry("r1"))
    text = update_changelog(text, "r2", _entry("r2"))
    assert text == "# Our log\n\nWritten by hand.\n\n" + _entry("r2") + "\n" + _entry("r1")


def test_an_entry_is_replaced_in_place_and_reapplying_changes_nothing() -> None:
    text = update_changelog(None, "r1", _entry("r1"))
    text = update_changelog(text, "r2", _entry("r2"))
    updated = update_changelog(text, "r1", _entry("r1", "new notes"))
    assert updated == text.replace(_entry("r1"), _entry("r1", "new notes"))
    assert update_changelog(updated, "r1", _entry("r1", "new notes")) == updated


def test_a_run_whose_name_prefixes_another_is_not_confused() -> None:
    text = update_changelog(None, "r10", _entry("r10"))
    text = update_changelog(text, "r1", _entry("r1"))
    assert text.count("run=r10 -->") == 2 and text.count("run=r1 -->") == 2
