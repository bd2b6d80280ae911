"""Generated artefacts (JSON Schemas, spec reference) must match the models."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.spec.reference import reference_markdown
from ilab_gitops.spec.schema import json_schemas
from tests.support.golden import check_file
from tests.support.specs import ENVIRONMENTS, EXAMPLES, ROOT

SCHEMA_DIR = ROOT / "spec" / "schema"


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_checked_in_json_schema_is_current(name: str, update_goldens: bool) -> None:
    check_file(SCHEMA_DIR / name, json_schemas()[name], update_goldens)


def test_spec_reference_is_current(update_goldens: bool) -> None:
    check_file(ROOT / "spec" / "README.md", reference_markdown(), update_goldens)


@pytest.mark.parametrize("path", EXAMPLES + ENVIRONMENTS, ids=lambda p: p.name)
def test_bundled_files_validate_against_the_published_json_schema(path: object) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    data = parse_yaml(path.read_bytes(), path.name).data
    name = "pipelinerun" if data["kind"] == "PipelineRun" else "environment"
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


def test_json_schema_rejects_an_unknown_field() -> None:
    schema = json.loads((SCHEMA_DIR / "pipelinerun.schema.json").read_text())
    data = parse_yaml(EXAMPLES[0].read_bytes(), "x.yaml").data
    data["spec"]["trainng"] = {}
    with pytest.raises(jsonschema.ValidationError, match="trainng"):
        jsonschema.Draft202012Validator(schema).validate(data)
