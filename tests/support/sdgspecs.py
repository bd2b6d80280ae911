"""A generate run for the SDG tests: the minimal example with `sdgData.generate`."""

from __future__ import annotations

from typing import Any

from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support.specs import ROOT

MINIMAL = (ROOT / "spec" / "examples" / "minimal.yaml").read_text(encoding="utf-8")
TARBALL = "  sdgData:\n    secretRef: {name: sdg-object-store}\n"
GENERATE = (
    "  sdgData:\n"
    "    generate:\n"
    "      teacherSecretRef: {name: teacher-server}\n"
    "      caBundle: {name: teacher-ca, key: ca.crt}\n"
    "      numInstructions: 50\n"
)


def run_text(sdg: str = GENERATE, *, prs: str = "") -> str:
    assert TARBALL in MINIMAL
    text = MINIMAL.replace(TARBALL, sdg)
    if prs:
        text = text.replace("    commit: 9f8e7d", f"    pullRequests: [{prs}]\n    commit: 9f8e7d")
    return text


def check(text: str) -> tuple[Any, list[str]]:
    model, diagnostics = check_document(parse_yaml(text.encode(), "runs/r.yaml"))
    return model, [f"{d.field}: {d.message}" for d in diagnostics]


def generate_run(text: str | None = None) -> PipelineRun:
    model, problems = check(text or run_text())
    assert isinstance(model, PipelineRun), problems
    return model
