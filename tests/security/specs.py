"""Run specs with a distinct marker in every Secret reference, compiled and rendered."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ilab_gitops.emit.render import render_run
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_document, check_run_against_environment
from ilab_gitops.manifests import compile_run
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.security.pods import ROOT

#: Secret names and keys planted in a spec, each distinct and found nowhere else.
MARKERS = {
    "base-s3": "zq-base-s3-7c1e",
    "base-hf": "zq-base-hf-2b9d",
    "base-hf-key": "zq-base-hf-key-4e0a",
    "sdg": "zq-sdg-5f3c",
    "taxonomy": "zq-taxonomy-8a61",
    "judge": "zq-judge-1d7b",
    "output": "zq-output-93e2",
    "publish-hf": "zq-publish-hf-6c4f",
    "publish-hf-key": "zq-publish-hf-key-0b58",
}
BASE_MODELS = ("s3", "huggingFace", "pvc")


def full_run(
    base_model: str, name: str = "zq-run", environment: str = "kind-dev"
) -> dict[str, Any]:
    """A PipelineRun that sets every optional Secret reference, with the MARKERS as values."""
    sources: dict[str, dict[str, Any]] = {
        "s3": {"secretRef": {"name": MARKERS["base-s3"]}, "prefix": "models/granite"},
        "huggingFace": {
            "repo": "ibm-granite/granite-7b-base",
            "revision": "0c2f2d6a1b7e3c9d4f5a6b7c8d9e0f1a2b3c4d5e",
            "tokenSecretRef": {"name": MARKERS["base-hf"], "key": MARKERS["base-hf-key"]},
        },
        "pvc": {"claimName": "models", "path": "granite-7b"},
    }
    return {
        "apiVersion": "gitops.instructlab.ai/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {
            "environment": environment,
            "baseModel": {base_model: copy.deepcopy(sources[base_model])},
            "sdgData": {"secretRef": {"name": MARKERS["sdg"]}},
            "taxonomy": {
                "repoUrl": "https://github.com/example/taxonomy",
                "commit": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
                "pullRequests": [1, 2],
                "credentialsSecretRef": {"name": MARKERS["taxonomy"]},
            },
            "training": {"nnodes": 1, "nprocPerNode": 1},
            "evaluation": {
                "judgeSecretRef": {"name": MARKERS["judge"]},
                "caBundle": {"name": "judge-ca", "key": "ca.crt"},
            },
            "output": {"secretRef": {"name": MARKERS["output"]}},
            "publish": {
                "huggingFace": {
                    "repo": "example/granite-lab",
                    "revision": "release-1",
                    "tokenSecretRef": {
                        "name": MARKERS["publish-hf"],
                        "key": MARKERS["publish-hf-key"],
                    },
                }
            },
        },
    }


def environments() -> list[Environment]:
    out = []
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        model, diagnostics = check_document(parse_yaml(path.read_bytes(), path.name))
        assert isinstance(model, Environment), diagnostics
        out.append(model)
    return out


def rendered_variants() -> Iterator[tuple[str, dict[str, str]]]:
    """(label, files) for the full run with each base-model source against each environment."""
    for env in environments():
        for base_model in BASE_MODELS:
            data = full_run(base_model, environment=env.metadata.name)
            document = parse_yaml(yaml.safe_dump(data).encode(), "run.yaml")
            run, diagnostics = check_document(document)
            assert isinstance(run, PipelineRun), diagnostics
            assert not check_run_against_environment(document, run, env)
            yield f"{base_model}--{env.metadata.name}", render_run(compile_run(run, env))


def write_runs(folder: Path, count: int) -> None:
    """`count` valid runs (kind-dev) as runs/<name>.yaml, for whole-CLI tests."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        data = full_run(BASE_MODELS[index % 3], name=f"zq-run-{index:04d}")
        (folder / f"zq-run-{index:04d}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
