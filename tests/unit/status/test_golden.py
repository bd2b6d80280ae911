"""`ilab-gitops status` output for a run in every state of the fixtures: table and JSON,
compared byte for byte with tests/golden/status/ (update: pytest --update-goldens)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ilab_gitops.status.classify import classify_run
from ilab_gitops.status.render import render_json, render_summary, render_table
from tests.support.golden import check_file, check_tree
from tests.unit.status.loader import GOLDEN, scenario, scenarios

NAMES = sorted(scenarios())


def _expected() -> dict[str, str]:
    files: dict[str, str] = {}
    statuses = []
    for name in NAMES:
        objects, now = scenario(name)
        status = classify_run(objects, now)
        statuses.append(status)
        files[f"{name}.txt"] = render_table(status)
        files[f"{name}.json"] = render_json(status)
    # The summary of `ilab-gitops status` without a run: one line per run (named here
    # after the scenarios).
    files["all-runs.txt"] = render_summary(
        [replace(s, run=n) for n, s in zip(NAMES, statuses, strict=True)]
    )
    return files


@pytest.mark.parametrize("name", NAMES)
def test_scenario_matches_golden(name: str, update_goldens: bool) -> None:
    files = _expected()
    for suffix in ("txt", "json"):
        check_file(GOLDEN / f"{name}.{suffix}", files[f"{name}.{suffix}"], update_goldens)


def test_golden_folder_holds_exactly_the_scenarios(update_goldens: bool) -> None:
    check_tree(GOLDEN, _expected(), update_goldens)


def test_json_is_what_the_table_shows() -> None:
    for name in NAMES:
        objects, now = scenario(name)
        status = classify_run(objects, now)
        data = json.loads(render_json(status))
        assert [s["state"] for s in data["steps"]] == [s.state.value for s in status.steps]
        assert data["failed"] is status.failed
