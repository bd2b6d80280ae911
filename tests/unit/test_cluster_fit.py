"""Runs that fit the cluster: node count from the environment, pod labels/annotations and
groups on every pod, the checkpoints' disk estimate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.manifests.compile import compile_run
from ilab_gitops.spec.capacity import (
    DiskEstimate,
    estimate,
    human_bytes,
    parameter_count,
    quantity_bytes,
)
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun, Training
from tests.security.cli import run_main
from tests.support.specs import ROOT, load_environment, load_run

MINIMAL = ROOT / "spec" / "examples" / "minimal.yaml"


def env(name: str, **spec: Any) -> Environment:
    base = load_environment(ROOT / "environments" / f"{name}.yaml")
    data = base.model_dump(mode="json", exclude_none=True)
    data["spec"].update(spec)
    return Environment.model_validate(data)


def run_without_nnodes(environment: str) -> PipelineRun:
    data = load_run(MINIMAL).model_dump(mode="json", exclude_none=True)
    data["spec"]["environment"] = environment
    data["spec"]["training"].pop("nnodes")
    return PipelineRun.model_validate(data)


def objects(run: PipelineRun, environment: Environment, kind: str) -> list[dict[str, Any]]:
    manifests = compile_run(run, environment)
    return [o for step in manifests.steps for o in step.objects if o["kind"] == kind]


def templates(run: PipelineRun, environment: Environment) -> list[dict[str, Any]]:
    out = [job["spec"]["template"] for job in objects(run, environment, "Job")]
    for job in objects(run, environment, "PyTorchJob"):
        out += [r["template"] for r in job["spec"]["pytorchReplicaSpecs"].values()]
    return out


def test_single_node_profile_never_gets_workers() -> None:
    environment = env("single-node-4xh100")
    assert environment.spec.gpu.nodes == 1
    jobs = objects(run_without_nnodes("single-node-4xh100"), environment, "PyTorchJob")
    assert len(jobs) == 2
    for job in jobs:
        assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Master"]


def test_nnodes_defaults_to_the_environments_nodes() -> None:
    environment = env("multi-node-gpu")
    run = run_without_nnodes("multi-node-gpu")
    for job in objects(run, environment, "PyTorchJob"):
        if job["metadata"]["labels"]["gitops.instructlab.ai/step"].startswith("train-"):
            assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 7
    params = [
        cm["data"]["params.json"]
        for cm in objects(run, environment, "ConfigMap")
        if '"step": "train-phase-1"' in cm["data"]["params.json"]
    ]
    assert len(params) == 1 and '"nnodes": 8' in params[0]


def test_pod_labels_annotations_and_groups_reach_every_pod_template() -> None:
    environment = env(
        "single-node-4xh100",
        podLabels={"cost-center": "ml"},
        podAnnotations={"sidecar.istio.io/inject": "false"},
        podSecurity={"fsGroup": 2000, "supplementalGroups": [3000, 3001]},
    )
    run = run_without_nnodes("single-node-4xh100")
    found = templates(run, environment)
    assert len(found) == 7  # 5 Jobs, 2 Master-only PyTorchJobs
    for template in found:
        labels = template["metadata"]["labels"]
        assert labels["cost-center"] == "ml"
        assert labels["gitops.instructlab.ai/run"] == run.metadata.name
        assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        context = template["spec"]["securityContext"]
        assert context["fsGroup"] == 2000
        assert context["supplementalGroups"] == [3000, 3001]
    for job in objects(run, environment, "Job"):  # the Job itself: only ours
        assert "cost-center" not in job["metadata"]["labels"]
        assert "sidecar.istio.io/inject" not in job["metadata"]["annotations"]


def test_without_pod_metadata_nothing_extra_is_rendered() -> None:
    environment = env("single-node-4xh100")
    for template in templates(run_without_nnodes("single-node-4xh100"), environment):
        assert "annotations" not in template["metadata"]
        assert "supplementalGroups" not in template["spec"]["securityContext"]


@pytest.mark.parametrize(
    ("text", "size"),
    [("2Ti", 2 * 2**40), ("20Gi", 20 * 2**30), ("1.5T", 1_500_000_000_000), ("500m", 0)],
)
def test_quantity_bytes(text: str, size: int) -> None:
    assert quantity_bytes(text) == size


def test_parameter_counts_and_units() -> None:
    assert parameter_count("8B") == 8_000_000_000
    assert parameter_count("7.2B") == 7_200_000_000
    assert parameter_count("350M") == 350_000_000
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(512) == "512 B"
    with pytest.raises(ValueError, match="not a parameter count"):
        parameter_count("8")


@pytest.mark.parametrize(("policy", "full_states"), [("none", 0), ("last", 4), ("everyEpoch", 17)])
def test_disk_estimate_by_hand(policy: str, full_states: int) -> None:
    training = Training.model_validate(
        {"modelParameters": "7B", "checkpoints": {"fullState": policy}}
    )
    found = estimate(training)
    # Phases of 7 and 10 epochs: last holds two full states per phase at its peak.
    assert found == DiskEstimate(7_000_000_000, full_states, 17)
    assert found.total == full_states * 84_000_000_000 + 18 * 14_000_000_000
    assert estimate(Training()) is None  # no model size, no estimate
    no_epoch_checkpoints = Training.model_validate(
        {"modelParameters": "7B", "checkpointAtEpoch": False, "checkpoints": {"fullState": policy}}
    )
    assert estimate(no_epoch_checkpoints) == DiskEstimate(7_000_000_000, full_states, 0)


SMALL_ON_KIND = """\
apiVersion: gitops.instructlab.ai/v1alpha1
kind: PipelineRun
metadata:
  name: tiny-on-kind
spec:
  environment: kind-dev
  baseModel:
    pvc: {claimName: models, path: tiny}
  sdgData:
    secretRef: {name: sdg-object-store}
  taxonomy:
    repoUrl: https://github.com/instructlab/taxonomy
    commit: 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432
  training:
    nprocPerNode: 1
    modelParameters: 600M
    knowledge: {epochs: 1, effectiveBatchSize: 8, learningRate: 1e-4}
    skills: {epochs: 1, effectiveBatchSize: 8, learningRate: 1e-4}
  evaluation:
    judgeSecretRef: {name: judge-server}
  output:
    secretRef: {name: model-output-store}
"""


def test_disk_warning_is_reported_and_does_not_block_render(tmp_path: Path) -> None:
    """600M parameters, fullState last: ~16.8 GiB of a 20Gi volume, a warning, not an error."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "small.yaml").write_text(SMALL_ON_KIND)
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    checked = run_main(["validate", "runs", "--environments", "environments"], tmp_path)
    assert checked.returncode == 0
    assert checked.stderr.splitlines() == [
        "runs/small.yaml:16:22: warning[disk-estimate] spec.training.modelParameters: "
        "checkpoints need about 16.8 GiB with fullState last and 600M parameters (2 full "
        "state(s) x 6.7 GiB + 3 model copies x 1.1 GiB (base model and per-epoch "
        'checkpoints)), over 80% of storage.size 20Gi of environment "kind-dev"',
        "5 file(s) valid: 1 run(s), 4 environment(s)",
    ]
    rendered = run_main(
        ["render", "runs", "--environments", "environments", "--out", "out"], tmp_path
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "out" / "kind-dev" / "tiny-on-kind").is_dir()
