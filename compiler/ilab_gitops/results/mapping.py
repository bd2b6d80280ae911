"""Which of a run's qna.yaml results belong to which taxonomy pull request.

A pull request owns a `qna.yaml` result when it changed that file (added, modified, or
renamed it; `previous_filename` counts too). Files are matched by exact path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ilab_gitops.results.model import QnaFileResult

QNA_FILE_NAME = "qna.yaml"


def is_qna_file(path: str) -> bool:
    return path == QNA_FILE_NAME or path.endswith("/" + QNA_FILE_NAME)


def qna_files_of(
    changed_files: Iterable[str], results: Sequence[QnaFileResult]
) -> list[QnaFileResult]:
    """The results of the qna.yaml files among `changed_files`, in results order."""
    changed = {path.lstrip("/") for path in changed_files if is_qna_file(path)}
    return [result for result in results if result.path.lstrip("/") in changed]
