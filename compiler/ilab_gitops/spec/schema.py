"""JSON Schemas of the user-facing models, as checked into spec/schema/."""

from __future__ import annotations

import json

from pydantic import BaseModel

from ilab_gitops.results.model import RunResults
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "pipelinerun.schema.json": PipelineRun,
    "environment.schema.json": Environment,
    "results.schema.json": RunResults,
}
SCHEMA_BASE_URL = "https://ilab-gitops.dev/schema/v1alpha1/"


def json_schema(model: type[BaseModel], filename: str) -> str:
    schema = model.model_json_schema(mode="validation")
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URL + filename,
        **schema,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schemas() -> dict[str, str]:
    """{file name: schema text} for every user-facing model."""
    return {name: json_schema(model, name) for name, model in SCHEMA_MODELS.items()}
