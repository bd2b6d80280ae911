"""Every compiled object of every example run, for every environment, against upstream schemas.

Built-in kinds are checked with kubernetes-validate (strict) at the environment's Kubernetes
version; custom resources (PyTorchJob, Flux Kustomization) against the upstream CRDs in
`tests/data/upstream/schemas/crds/`. The negative tests prove that the validators do reject
bad objects, so a clean result means something.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ilab_gitops.emit.render import iter_stream, render_run
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.manifests import Manifests, compile_run
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support import k8s_schemas
from tests.support.k8s_schemas import builtin_errors, crd_errors, is_crd, upstream_schemas

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
ENVIRONMENTS = sorted((ROOT / "environments").glob("*.yaml"))
CASES = [(spec, env) for spec in EXAMPLES for env in ENVIRONMENTS]
CASE_IDS = [f"{spec.stem}@{env.stem}" for spec, env in CASES]


def _load(path: Path) -> PipelineRun | Environment:
    model, diagnostics = check_document(parse_yaml(path.read_bytes(), str(path)))
    assert not diagnostics, "\n".join(d.as_text() for d in diagnostics)
    assert model is not None
    return model


def _compile(spec: Path, env_path: Path) -> tuple[Manifests, Environment]:
    run = _load(spec)
    env = _load(env_path)
    assert isinstance(run, PipelineRun), f"{spec} is not a PipelineRun"
    assert isinstance(env, Environment), f"{env_path} is not an Environment"
    return compile_run(run, env), env


def _errors(obj: dict[str, Any], env: Environment) -> list[str]:
    if is_crd(obj):
        return crd_errors(obj)
    return builtin_errors(obj, env.spec.kubernetesVersion)


def _first(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = [o for o in [*manifests.objects(), *manifests.flux] if o["kind"] == kind]
    assert found, f"no {kind} compiled"
    return copy.deepcopy(found[0])


def _mentions(errors: list[str], *words: str) -> bool:
    return any(all(word in error for word in words) for error in errors)


@pytest.fixture(scope="module")
def minimal_on_flux() -> tuple[Manifests, Environment]:
    """A run whose output holds a Job, a PyTorchJob and Flux Kustomizations."""
    env = next(p for p in ENVIRONMENTS if p.stem == "kind-dev")
    spec = next(p for p in EXAMPLES if p.stem == "minimal")
    return _compile(spec, env)


def test_there_is_something_to_check() -> None:
    assert EXAMPLES, "no spec/examples/*.yaml"
    assert ENVIRONMENTS, "no environments/*.yaml"


# --------------------------------------------------------------------------- positive


@pytest.mark.parametrize(("spec", "env_path"), CASES, ids=CASE_IDS)
def test_compiled_objects_match_upstream_schemas(spec: Path, env_path: Path) -> None:
    upstream_schemas()
    manifests, env = _compile(spec, env_path)
    objects = [*manifests.objects(), *manifests.flux]
    assert objects
    problems = [
        f"{obj['kind']} {obj['metadata']['name']}: {error}"
        for obj in objects
        for error in _errors(obj, env)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("spec", "env_path"), CASES, ids=CASE_IDS)
def test_rendered_yaml_reparses_to_the_compiled_objects(spec: Path, env_path: Path) -> None:
    manifests, _ = _compile(spec, env_path)
    files = render_run(manifests)
    expected: dict[str, list[dict[str, Any]]] = {
        f"{step.folder}/manifests.yaml": list(step.objects) for step in manifests.steps
    }
    if manifests.flux:
        expected["flux/kustomizations.yaml"] = list(manifests.flux)
    extra = {"flux/kustomization.yaml"} if manifests.flux else set()
    assert set(files) == set(expected) | extra
    for path, objects in expected.items():
        parsed = list(yaml.safe_load_all(files[path]))
        assert parsed == objects, path
        # `==` says 1 == 1.0 == True; canonical JSON tells bool, int, float and str apart.
        assert json.dumps(parsed, sort_keys=True) == json.dumps(objects, sort_keys=True), path


@pytest.mark.parametrize(("spec", "env_path"), CASES, ids=CASE_IDS)
def test_rendered_stream_reparses_to_the_compiled_objects(spec: Path, env_path: Path) -> None:
    manifests, _ = _compile(spec, env_path)
    parsed = list(yaml.safe_load_all("".join(iter_stream([manifests]))))
    objects = [*manifests.objects(), *manifests.flux]
    assert json.dumps(parsed, sort_keys=True) == json.dumps(objects, sort_keys=True)


# --------------------------------------------------------------------------- negative


def test_pytorchjob_with_unknown_spec_field_is_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    assert crd_errors(job) == []
    job["spec"]["bogusField"] = 1
    errors = crd_errors(job)
    assert _mentions(errors, "$.spec", "bogusField"), errors


def test_pytorchjob_with_unknown_container_field_is_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    template = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    template["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    errors = crd_errors(job)
    assert _mentions(errors, "containers[0]", "imagePullPolicyy"), errors


def test_pytorchjob_type_errors_are_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    job["spec"]["nprocPerNode"] = 1  # a string in the CRD
    job["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "1"
    errors = crd_errors(job)
    assert _mentions(errors, "$.spec.nprocPerNode", "string"), errors
    assert _mentions(errors, "$.spec.pytorchReplicaSpecs.Master.replicas", "integer"), errors


def test_pytorchjob_int_or_string_quantities(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    resources = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    resources["limits"]["cpu"] = 2
    resources["requests"]["cpu"] = "1500m"
    assert crd_errors(job) == []
    resources["limits"]["cpu"] = True
    assert _mentions(crd_errors(job), "limits.cpu"), crd_errors(job)


def test_pytorchjob_duplicate_list_map_keys_are_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["env"].append(dict(container["env"][0]))
    errors = crd_errors(job)
    assert _mentions(errors, "containers[0].env", "duplicate"), errors


def test_custom_resource_metadata_is_checked_as_object_meta(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    job["metadata"]["labels"]["enabled"] = True
    job["metadata"]["nmae"] = "typo"
    errors = crd_errors(job)
    assert _mentions(errors, "$.metadata.labels.enabled"), errors
    assert _mentions(errors, "$.metadata", "nmae"), errors


def test_job_with_unknown_container_field_is_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    manifests, env = minimal_on_flux
    job = _first(manifests, "Job")
    version = env.spec.kubernetesVersion
    assert builtin_errors(job, version) == []
    job["spec"]["template"]["spec"]["containers"][0]["bogusField"] = "x"
    errors = builtin_errors(job, version)
    assert _mentions(errors, "containers[0]", "bogusField"), errors
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, version, strict=True)


def test_builtin_errors_agree_with_kubernetes_validate(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    manifests, env = minimal_on_flux
    version = env.spec.kubernetesVersion
    for obj in manifests.objects():
        if is_crd(obj):
            continue
        assert builtin_errors(obj, version) == []
        kubernetes_validate.validate(obj, version, strict=True)
        broken = copy.deepcopy(obj)
        broken["metadata"]["labels"] = {"flag": 1}
        assert builtin_errors(broken, version), obj["kind"]
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


def test_kustomization_with_string_wait_is_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    kustomization = _first(minimal_on_flux[0], "Kustomization")
    assert crd_errors(kustomization) == []
    kustomization["spec"]["wait"] = "yes"
    errors = crd_errors(kustomization)
    assert _mentions(errors, "$.spec.wait", "boolean"), errors


def test_kustomization_missing_required_field_is_rejected(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    kustomization = _first(minimal_on_flux[0], "Kustomization")
    del kustomization["spec"]["sourceRef"]
    kustomization["spec"]["interval"] = "ten minutes"
    errors = crd_errors(kustomization)
    assert _mentions(errors, "$.spec", "sourceRef", "required"), errors
    assert _mentions(errors, "$.spec.interval", "does not match"), errors


def test_wrong_api_version_is_rejected_and_unknown_crd_raises(
    minimal_on_flux: tuple[Manifests, Environment],
) -> None:
    upstream_schemas()
    job = _first(minimal_on_flux[0], "PyTorchJob")
    job["apiVersion"] = "kubeflow.org/v2"
    with pytest.raises(KeyError, match="no CRD"):
        crd_errors(job)


def test_is_crd() -> None:
    assert is_crd({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob"})
    assert is_crd({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"})
    assert not is_crd({"apiVersion": "v1", "kind": "ConfigMap"})
    assert not is_crd({"apiVersion": "batch/v1", "kind": "Job"})
    assert not is_crd({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"})
    assert is_crd({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue"})


def test_unsupported_kubernetes_version_raises() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}
    with pytest.raises(ValueError, match="no schemas for Kubernetes"):
        builtin_errors(job, "99.0")


# --------------------------------------------------------------------------- upstream_schemas


def test_upstream_schemas_missing_is_a_failure_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(k8s_schemas, "UPSTREAM", tmp_path / "missing")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="vendored upstream schemas are missing"):
        upstream_schemas()


def test_upstream_schemas_finds_the_schemas() -> None:
    schemas = upstream_schemas()
    assert (schemas / "crds").is_dir()


# --------------------------------------------------------------------------- translation


def test_openapi_translation_follows_api_server_rules() -> None:
    openapi: dict[str, Any] = {
        "type": "object",
        "properties": {
            "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
            "loose": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"inner": {"type": "object", "properties": {}}},
            },
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "maybe": {"type": "string", "nullable": True},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        },
    }
    schema = k8s_schemas._translate(openapi)
    validator = k8s_schemas._CRDValidator(schema)

    def ok(instance: dict[str, Any]) -> bool:
        return bool(validator.is_valid(instance))

    assert ok({"strict": {"a": "x"}, "loose": {"anything": 1}, "port": 80, "maybe": None})
    assert ok({"port": "http", "map": {"k": "v"}, "set": ["a", "b"]})
    assert not ok({"unknown": 1})
    assert not ok({"strict": {"b": "x"}})
    assert not ok({"loose": {"inner": {"x": 1}}})  # preserve-unknown-fields is not inherited
    assert not ok({"port": 1.5})
    assert not ok({"port": True})
    assert not ok({"map": {"k": 1}})
    assert not ok({"set": ["a", "a"]})
