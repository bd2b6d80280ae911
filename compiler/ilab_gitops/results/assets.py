"""The run's report and plots on its GitHub release.

The publish step uploads `report/report.html` and the plots beside `results.json`; the sync
attaches them to the run's release in the runs repo, where the PR comment and the release
notes link them (`summary.report_line`). Attaching is add-only: a file already attached is
never replaced (a re-run of publish makes the same bytes).
"""

from __future__ import annotations

from collections.abc import Mapping

from ilab_gitops.results.locations import REPORT_DIR, REPORT_FILES, REPORT_TYPES
from ilab_gitops.results.ports import AlreadyExists, GitHubPort, Release, ResultsStore


def report_files(store: ResultsStore, results_key: str) -> tuple[dict[str, bytes], list[str]]:
    """The report files uploaded beside `results_key` (those that exist), by name, and a
    problem line for each that could not be read."""
    from ilab_gitops.results.sync import StoreError

    folder = results_key.rpartition("/")[0]
    found: dict[str, bytes] = {}
    problems: list[str] = []
    for name in REPORT_FILES:
        try:
            data = store.get(f"{folder}/{REPORT_DIR}/{name}")
        except StoreError as err:
            problems.append(f"report {name}: {err}")
            continue
        if data is not None:
            found[name] = data
    return found, problems


def attach(
    github: GitHubPort,
    repo: str,
    release: Release,
    report: Mapping[str, bytes],
    *,
    dry_run: bool,
) -> list[str]:
    """Attach the files the release lacks; the actions taken (or that would be)."""
    if not report:
        return []
    attached = set(github.release_assets(repo, release.id))
    actions: list[str] = []
    for name, data in report.items():
        if name in attached:
            continue
        if dry_run:
            actions.append(f"would attach {name} to release {release.tag}")
            continue
        content_type = REPORT_TYPES[name[name.rindex(".") :]]
        try:
            github.upload_release_asset(repo, release.id, name, data, content_type)
        except AlreadyExists:
            continue  # a concurrent sync attached it
        actions.append(f"attached {name} to release {release.tag}")
    return actions
