from __future__ import annotations

from ilab_gitops.results.mapping import is_qna_file, qna_files_of
from tests.support.results_data import qna_file


def test_qna_files_of_matches_changed_paths_exactly() -> None:
    results = [qna_file("a/qna.yaml"), qna_file("b/qna.yaml"), qna_file("c/qna.yaml")]
    changed = ["b/qna.yaml", "a/attribution.txt", "a/qna.yaml.bak", "/c/qna.yaml"]
    assert [r.path for r in qna_files_of(changed, results)] == ["b/qna.yaml", "c/qna.yaml"]


def test_is_qna_file() -> None:
    assert is_qna_file("qna.yaml") and is_qna_file("x/y/qna.yaml")
    assert not is_qna_file("x/myqna.yaml") and not is_qna_file("x/qna.yml")
