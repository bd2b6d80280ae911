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


def report_files(
    store: ResultsStore, results_key: str
) -> tuple[dict[str, bytes], list[str], list[str]]:
    """The report files uploaded beside `results_key` (those that exist) by name, a note for
    each left out for good, and a problem for each that failed in passing.

    A report file is an extra: one that can never be read (no permission under report/, over
    the size limit) is skipped and never holds back the run's results; a network error
    postpones the run to the next sync, so the report is not lost to a blip."""
    from ilab_gitops.results.sync import StoreError

    folder = results_key.rpartition("/")[0]
    found: dict[str, bytes] = {}
    skipped: list[str] = []
    retry: list[str] = []
    for name in REPORT_FILES:
        try:
            data = store.get(f"{folder}/{REPORT_DIR}/{name}")
        except StoreError as err:
            if err.lasting:
                skipped.append(f"report {name} skipped: {err}")
            else:
                retry.append(f"report {name}: {err}")
            continue
        if data is not None:
            found[name] = data
    return found, skipped, retry


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
