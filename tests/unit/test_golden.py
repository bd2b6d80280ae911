"""Golden files: every example x every reference environment, compared byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilab_gitops.emit.render import render_run
from ilab_gitops.manifests import compile_run
from tests.support.golden import check_tree
from tests.support.specs import ENVIRONMENTS, EXAMPLES, ROOT, load_environment, load_run

GOLDEN = ROOT / "tests" / "golden"
CASES = [(ex, env) for ex in EXAMPLES for env in ENVIRONMENTS]


@pytest.mark.parametrize(
    ("example", "environment"), CASES, ids=[f"{e.stem}--{v.stem}" for e, v in CASES]
)
def test_rendered_example_matches_golden(
    example: Path, environment: Path, update_goldens: bool
) -> None:
    files = render_run(compile_run(load_run(example), load_environment(environment)))
    check_tree(GOLDEN / f"{example.stem}--{environment.stem}", files, update_goldens)


def test_every_golden_folder_has_a_case() -> None:
    expected = {f"{e.stem}--{v.stem}" for e, v in CASES}
    present = {p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name != "status"}
    assert present == expected
