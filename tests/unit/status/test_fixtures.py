"""The status fixtures are real object shapes: built-in kinds pass the kubernetes client's
models (kubernetes 37's pydantic models reject unknown fields and wrong types) and the
strict OpenAPI schemas; custom resources validate against their upstream CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.k8s_schemas import builtin_errors, crd_errors, is_crd
from tests.unit.status.loader import OBJECTS, items, to_model

FILES = sorted(p.name for p in OBJECTS.glob("*.yaml"))


@pytest.mark.parametrize("name", FILES)
def test_fixture_is_a_valid_object(name: str) -> None:
    for obj in items(name):
        if is_crd(obj):
            assert crd_errors(obj) == []
        else:
            assert builtin_errors(obj, "1.33") == []
            model = to_model(obj)
            assert model.metadata.name == obj["metadata"]["name"]


def test_every_fixture_is_used_by_a_scenario_or_a_test() -> None:
    here = Path(__file__).parent
    text = "\n".join(
        [(OBJECTS.parent / "scenarios.yaml").read_text()]
        + [p.read_text() for p in here.glob("test_*.py")]
        + [p.read_text() for p in (here.parent / "notifications").glob("test_*.py")]
    )
    unused = [
        n
        for n in FILES
        if n not in text and n.removeprefix("application-").removesuffix(".yaml") not in text
    ]
    assert unused == []
