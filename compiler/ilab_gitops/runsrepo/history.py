"""Runs that were deleted from the base branch earlier, so their names are not reused."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ilab_gitops.load.sources import LoadError, parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.spec.pipeline_run import PipelineRun


@dataclass(frozen=True)
class HistoricRun:
    """A run spec as it was just before the commit that deleted its file."""

    name: str
    path: str  # repo-relative
    commit: str  # the deleting commit
    spec: dict[str, Any]  # model_dump(mode="json") of the whole PipelineRun


def historic_runs(deleted: Iterable[tuple[str, str, bytes]]) -> dict[str, list[HistoricRun]]:
    """Valid runs among (deleting commit, path, content before) entries, newest first by name.

    Files that no longer parse or validate (older spec versions, stray YAML) are skipped: the
    rule protects runs that could have been applied, and an invalid spec never was.
    """
    out: dict[str, list[HistoricRun]] = {}
    for commit, path, raw in deleted:
        try:
            model, _ = check_document(parse_yaml(raw, path))
        except LoadError:
            continue
        if isinstance(model, PipelineRun):
            name = model.metadata.name
            out.setdefault(name, []).append(
                HistoricRun(name, path, commit, model.model_dump(mode="json"))
            )
    return out
