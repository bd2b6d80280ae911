"""The optional sdg step in the compiler: spec rules, step order, hash chain, prepare's key.

A run with `sdgData.generate` gets `sdg` as its first step (folder 01-sdg, the workspace
volume in its wave) and prepare reads the tarball the sdg step uploads; runs with a tarball
in S3 compile exactly as before (the goldens hold them byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.emit.render import render_run
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_run_against_environment
from ilab_gitops.manifests import STEP_IDS, K8sObject, Manifests, compile_run
from ilab_gitops.manifests.steps import sdg_object_key
from ilab_gitops.spec.environment import Environment
from tests.support.sdgspecs import GENERATE, TARBALL, check, generate_run, run_text
from tests.support.specs import ENVIRONMENTS, ROOT, load_environment


@pytest.fixture(scope="module")
def kind_dev() -> Environment:
    return load_environment(ROOT / "environments" / "kind-dev.yaml")


def params(manifests: Manifests, step_id: str) -> Any:
    (step,) = [s for s in manifests.steps if s.step_id == step_id]
    (cm,) = [
        o for o in step.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == step.name
    ]
    return json.loads(cm["data"]["params.json"])


def container_env(manifests: Manifests, step_id: str) -> list[K8sObject]:
    (step,) = [s for s in manifests.steps if s.step_id == step_id]
    (job,) = [o for o in step.objects if o["kind"] == "Job"]
    env: list[K8sObject] = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_generate_defaults_follow_the_reference_pipeline() -> None:
    gen = generate_run(run_text(GENERATE.replace("      numInstructions: 50\n", ""))).spec
    assert gen.sdgData.generate is not None
    assert gen.sdgData.kind == "generate"
    got = gen.sdgData.generate.model_dump(exclude={"teacherSecretRef", "caBundle"})
    assert got == {
        "pipeline": "full",
        "numInstructions": 30,
        "batchSize": 128,
        "numWorkers": 2,
        "taxonomyBaseBranch": "main",
    }


@pytest.mark.parametrize(
    ("sdg", "message"),
    [
        ("  sdgData: {}\n", "set exactly one of secretRef (an SDG tarball in S3) and generate"),
        (
            TARBALL + "    generate: {teacherSecretRef: {name: t}}\n",
            "set exactly one of secretRef (an SDG tarball in S3) and generate (found both)",
        ),
        (
            GENERATE + "    sha256: " + "a" * 64 + "\n",
            "sha256 applies to an S3 tarball, not to generate",
        ),
    ],
)
def test_exactly_one_source(sdg: str, message: str) -> None:
    model, problems = check(run_text(sdg))
    assert model is None
    assert any(message in p and p.startswith("spec.sdgData") for p in problems), problems


def test_bad_pipeline_name_is_refused() -> None:
    model, problems = check(run_text(GENERATE + "      pipeline: agentic\n"))
    assert model is None
    assert any(p.startswith("spec.sdgData.generate.pipeline") for p in problems), problems


def test_an_environment_without_an_sdg_image_is_refused(kind_dev: Environment) -> None:
    text = run_text()
    env = kind_dev.model_copy(
        update={
            "spec": kind_dev.spec.model_copy(
                update={"images": kind_dev.spec.images.model_copy(update={"sdg": None})}
            )
        }
    )
    document = parse_yaml(text.encode(), "runs/r.yaml")
    problems = check_run_against_environment(document, generate_run(text), env)
    assert [(p.field, p.code) for p in problems] == [
        ("spec.sdgData.generate", "invalid-combination")
    ]
    assert "has no images.sdg" in problems[0].message
    line = text.splitlines().index("    generate:") + 1
    assert (problems[0].line, problems[0].column) == (line, 5)


@pytest.mark.parametrize("env_path", ENVIRONMENTS, ids=lambda p: p.stem)
def test_sdg_runs_first_and_prepare_reads_its_upload(env_path: Path) -> None:
    env = load_environment(env_path)
    manifests = compile_run(generate_run(), env)
    assert [s.step_id for s in manifests.steps] == ["sdg", *STEP_IDS]
    sdg, prepare = manifests.steps[0], manifests.steps[1]
    assert (sdg.folder, sdg.wave, prepare.folder, prepare.wave) == ("01-sdg", 10, "02-prepare", 20)
    kinds = [o["kind"] for o in sdg.objects]
    assert kinds == ["PersistentVolumeClaim", "NetworkPolicy", "ConfigMap", "Job"]
    assert "PersistentVolumeClaim" not in [o["kind"] for o in prepare.objects]
    sdg_params = params(manifests, "sdg")
    assert sdg_params["stepName"] == sdg.name
    assert (sdg_params["numInstructions"], sdg_params["pipeline"]) == (50, "full")
    assert sdg_params["teacherCaBundle"] == "/etc/ilab/ca/teacher-ca/ca.crt"
    prefix = f"ilab-runs/{env.spec.cluster}/{env.spec.namespace}/granite-minimal"
    assert sdg_params["destinationPrefix"] == prefix
    key = sdg_object_key(prefix, sdg.name)
    assert key == f"{prefix}/sdg/{sdg.name}.tar"
    prepare_env = {e["name"]: e for e in container_env(manifests, "prepare")}
    assert prepare_env["ILAB_SDG_DATA_KEY"] == {"name": "ILAB_SDG_DATA_KEY", "value": key}
    assert prepare_env["ILAB_SDG_BUCKET"]["valueFrom"]["secretKeyRef"]["name"] == (
        "model-output-store"
    )
    teacher = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container_env(manifests, "sdg")
        if e["name"].startswith("ILAB_TEACHER_")
    }
    # Optional, so that the step's preflight names a missing key instead of the pod not
    # starting; the preflight checks them with every later step's keys, buckets and judge.
    assert teacher == {
        "ILAB_TEACHER_API_TOKEN": {"name": "teacher-server", "key": "api_token", "optional": True},
        "ILAB_TEACHER_ENDPOINT": {"name": "teacher-server", "key": "endpoint", "optional": True},
        "ILAB_TEACHER_MODEL_NAME": {
            "name": "teacher-server",
            "key": "model_name",
            "optional": True,
        },
    }
    checks = sdg_params["preflight"]
    checked = {c["env"] for c in checks["secrets"]}
    assert set(teacher) | {"ILAB_JUDGE_API_TOKEN", "ILAB_OUTPUT_BUCKET"} <= checked
    assert [c["field"] for c in checks["s3"]] == ["output.secretRef"]
    assert checks["judge"]["secretRef"] == {"name": "judge-server"}
    assert checks == {
        **params(manifests, "prepare")["preflight"],
        "secrets": checks["secrets"],
        "s3": checks["s3"],
    }
    files = sorted(render_run(manifests))
    assert files[:2] == ["01-sdg/manifests.yaml", "02-prepare/manifests.yaml"]


def test_an_sdg_setting_reruns_sdg_and_everything_after(kind_dev: Environment) -> None:
    before = compile_run(generate_run(), kind_dev)
    after = compile_run(generate_run(run_text(GENERATE.replace("50", "60"))), kind_dev)
    assert all(a.name != b.name for a, b in zip(before.steps, after.steps, strict=True))
    tarball = compile_run(generate_run(run_text(TARBALL)), kind_dev)
    assert [s.step_id for s in tarball.steps] == list(STEP_IDS)
    assert tarball.steps[0].objects[0]["metadata"]["labels"]["gitops.instructlab.ai/step"] == (
        "prepare"
    )
