"""Load the bundled examples and reference environments for tests."""

from __future__ import annotations

from pathlib import Path

from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
ENVIRONMENTS = sorted((ROOT / "environments").glob("*.yaml"))


def load_run(path: Path) -> PipelineRun:
    model, diagnostics = check_document(parse_yaml(path.read_bytes(), path.name))
    assert isinstance(model, PipelineRun), diagnostics
    return model


def load_environment(path: Path) -> Environment:
    model, diagnostics = check_document(parse_yaml(path.read_bytes(), path.name))
    assert isinstance(model, Environment), diagnostics
    return model
