"""CHANGELOG.md of the runs repo: one marked block per run, newest first (pure).

Only the marked blocks are ours; text around them (a preamble, notes written by people) is
kept as it is. A run's block is replaced in place when its results change.
"""

from __future__ import annotations

import re

from ilab_gitops import ghtext
from ilab_gitops.results.locations import Links
from ilab_gitops.results.model import RunResults
from ilab_gitops.results.release_notes import release_tag
from ilab_gitops.results.summary import finished_date

CHANGELOG_PATH = "CHANGELOG.md"
PREAMBLE = (
    "# Changelog\n\n"
    "Models built from the runs in this repository, newest first. Each entry is written by\n"
    "`ilab-gitops results sync` from the run's results.json; preview one with\n"
    "`ilab-gitops changelog RUN`.\n"
)
_START = "<!-- ilab-gitops:changelog run={run} -->"
_END = "<!-- /ilab-gitops:changelog run={run} -->"
_ANY_START = re.compile(r"^<!-- ilab-gitops:changelog run=[a-z0-9-]+ -->$", re.MULTILINE)


def changelog_entry(results: RunResults, notes: str, links: Links) -> str:
    """The run's block: markers around a heading and the release notes."""
    tag = release_tag(results.run)
    heading = f"## {ghtext.link(results.run, links.release(tag))} — {finished_date(results)}"
    return (
        f"{_START.format(run=results.run)}\n{heading}\n\n{notes.rstrip()}\n"
        f"{_END.format(run=results.run)}\n"
    )


def update_changelog(text: str | None, run: str, entry: str) -> str:
    """`text` with the block of `run` replaced by `entry`, or `entry` added above the others."""
    current = text if text else PREAMBLE
    start, end = _START.format(run=run), _END.format(run=run)
    begin = current.find(start + "\n")
    if begin >= 0:
        stop = current.find(end, begin)
        if stop >= 0:
            stop += len(end)
            if current[stop : stop + 1] == "\n":
                stop += 1
            return current[:begin] + entry + current[stop:]
    first = _ANY_START.search(current)
    if first is not None:
        return current[: first.start()] + entry + "\n" + current[first.start() :]
    return current.rstrip("\n") + "\n\n" + entry
