"""Load the status fixtures (tests/fixtures/status) the way the command receives objects:
Jobs and Pods through the kubernetes client's own deserializer (its models), custom
resources as dicts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.status.classify import RunObjects

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "status"
OBJECTS = FIXTURES / "objects"
GOLDEN = ROOT / "tests" / "golden" / "status"
MODELS = {("batch/v1", "Job"): "V1Job", ("v1", "Pod"): "V1Pod"}

kubernetes = pytest.importorskip(
    "kubernetes",
    reason="the status tests need the kubernetes client (pip install 'kubernetes<37.0.2')",
)


def read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OBJECTS / name).read_text(encoding="utf-8"))
    return data


def items(name: str) -> list[dict[str, Any]]:
    """The objects in a fixture file: one object, or the items of a `<Kind>List`."""
    data = read(name)
    return list(data["items"]) if str(data["kind"]).endswith("List") else [data]


def to_model(obj: dict[str, Any]) -> Any:
    """A built-in object as the client returns it (V1Job, V1Pod), via its deserializer."""
    model = MODELS[(obj["apiVersion"], obj["kind"])]
    api = kubernetes.client.ApiClient()
    text = json.dumps(obj)
    try:  # kubernetes >= 37: deserialize(response_text, response_type, content_type)
        return api.deserialize(text, model, "application/json")
    except TypeError:  # kubernetes 36: deserialize(response, response_type)

        class _Response:
            data = text

        return api.deserialize(_Response(), model)


def run_objects(files: list[str], logs: list[str] | None = None) -> RunObjects:
    jobs, pods, custom, kustomizations = [], [], [], []
    application = None
    for name in files:
        for obj in items(name):
            kind = obj["kind"]
            if kind == "Job":
                jobs.append(to_model(obj))
            elif kind == "Pod":
                pods.append(to_model(obj))
            elif kind == "Application":
                application = obj
            elif kind == "Kustomization":
                kustomizations.append(obj)
            else:
                custom.append(obj)
    texts = {Path(n).stem: (FIXTURES / "logs" / n).read_text(encoding="utf-8") for n in logs or []}
    return RunObjects(
        "granite-demo",
        "ilab",
        tuple(jobs),
        tuple(pods),
        tuple(custom),
        application,
        tuple(kustomizations),
        texts,
    )


def scenarios() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = yaml.safe_load(
        (FIXTURES / "scenarios.yaml").read_text(encoding="utf-8")
    )
    return data


def scenario(name: str) -> tuple[RunObjects, datetime]:
    spec = scenarios()[name]
    now = datetime.fromisoformat(spec["now"].replace("Z", "+00:00"))
    return run_objects(spec["objects"], spec.get("logs")), now
