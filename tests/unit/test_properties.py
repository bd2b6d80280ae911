"""Compiler invariants over generated valid runs (STYLE.md habit 10; GITOPS.md naming design).

- compiling is a function: same spec, same bytes, whatever the key order of the input;
- every object name is a DNS label within the limits Kubernetes and the training operator
  impose on the objects and on the pods they create, unique per kind;
- no Secret value can reach the output: no Secret objects, and every environment variable
  is a fixed literal or a reference to a Secret the spec names;
- the hash chain: changing step k's settings renames k and every later step and leaves the
  earlier ones byte for byte alone.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ilab_gitops.emit import yaml_emit
from ilab_gitops.emit.render import render_run
from ilab_gitops.manifests import STEP_IDS, K8sObject, Manifests, compile_run
from ilab_gitops.manifests.progress import LABEL_PROGRESS
from ilab_gitops.spec.base import DNS1035_PATTERN, DNS1123_PATTERN
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support import strategies as gen
from tests.support.specs import EXAMPLES, load_environment, load_run

DNS1123 = re.compile(DNS1123_PATTERN)
DNS1035 = re.compile(DNS1035_PATTERN)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: (ILAB_PROGRESS_TOKEN_DIR names a folder: manifests/progress.py.)
LITERAL_ENV = {"HOME", "ILAB_PARAMS", "ILAB_PROGRESS_TOKEN_DIR"}
ROOT = Path(__file__).resolve().parents[2]


def _all_objects(manifests: Manifests) -> list[K8sObject]:
    return [*manifests.objects(), *manifests.flux]


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _containers(obj: K8sObject) -> Iterator[K8sObject]:
    for node in _walk(obj):
        if isinstance(node, dict) and isinstance(node.get("containers"), list):
            yield from node["containers"]
            yield from node.get("initContainers", [])


def _params(objects: tuple[K8sObject, ...]) -> Any:
    """The step's params: its one ConfigMap with data (a progress ConfigMap has none)."""
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap" and "data" in o]
    return json.loads(configmap["data"]["params.json"])


def _secret_names(run: PipelineRun) -> set[str]:
    """Names of the Secrets the spec refers to (every `...SecretRef` field)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("ecretRef") and isinstance(value, dict):
                    found.add(value["name"])
                visit(value)

    visit(run.model_dump(mode="json"))
    return found


# --------------------------------------------------------------------------- (a) determinism


@gen.COMPILER
@given(gen.specs_and_environments())
def test_compiling_twice_gives_identical_bytes(pair: tuple[gen.Spec, Environment]) -> None:
    data, env = pair
    run = PipelineRun.model_validate(data)
    first = render_run(compile_run(run, env))
    assert render_run(compile_run(run, env)) == first
    # A fresh model of the same spec, and one read with its keys in another order.
    assert render_run(compile_run(PipelineRun.model_validate(data), env)) == first
    shuffled = PipelineRun.model_validate(gen.reversed_keys(data))
    assert render_run(compile_run(shuffled, env)) == first


@gen.COMPILER
@given(gen.runs_and_environments())
def test_rendered_files_read_back_as_the_compiled_objects(
    pair: tuple[PipelineRun, Environment],
) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    files = render_run(manifests)

    def documents(folder: str) -> list[Any]:
        return [
            doc
            for path, text in files.items()
            if path.startswith(folder + "/")
            for doc in yaml.load_all(text, Loader=yaml.CSafeLoader)
            if doc["apiVersion"] != "kustomize.config.k8s.io/v1beta1"  # kustomize's index
        ]

    for step in manifests.steps:
        assert documents(step.folder) == list(step.objects)
    assert documents("flux") == list(manifests.flux)


# --------------------------------------------------------------------------- (b) names


@gen.COMPILER
@given(gen.runs_and_environments())
def test_object_names_are_valid_unique_and_short_enough(
    pair: tuple[PipelineRun, Environment],
) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    seen: set[tuple[str, str]] = set()
    for obj in _all_objects(manifests):
        kind, name = obj["kind"], obj["metadata"]["name"]
        assert len(name) <= 63 and DNS1123.match(name), (kind, name)
        assert (kind, name) not in seen, f"two {kind} objects named {name}"
        seen.add((kind, name))
        for key, value in obj["metadata"].get("labels", {}).items():
            assert len(value) <= 63 and LABEL_VALUE.match(value), (name, key, value)
        if kind != "PyTorchJob":
            continue
        # The operator names pods <job>-master-0 and <job>-worker-<i>; each becomes a
        # hostname (a DNS-1035 label) that must fit in 63 characters.
        assert DNS1035.match(name), name
        replicas = obj["spec"]["pytorchReplicaSpecs"]
        assert len(f"{name}-master-0") <= 63
        nnodes = run.spec.training.nodes(env.spec.gpu.nodes)
        is_training = obj["metadata"]["labels"]["gitops.instructlab.ai/step"].startswith("train-")
        if is_training:
            assert ("Worker" in replicas) == (nnodes > 1)
        if nnodes > 1 and is_training:
            assert replicas["Worker"]["replicas"] == nnodes - 1
        if "Worker" in replicas:
            last = f"{name}-worker-{replicas['Worker']['replicas'] - 1}"
            assert len(last) <= 63 and DNS1035.match(last), last
    assert [s.step_id for s in manifests.steps] == list(STEP_IDS)
    for step in manifests.steps:  # <run>-<step>-<hash8>, the hash being the chain's
        assert step.name == f"{run.metadata.name}-{step.step_id}-{step.digest[:8]}"
    assert len({s.name for s in manifests.steps}) == len(STEP_IDS)


def test_longest_names_fit_with_a_hundred_nodes() -> None:
    """The worst case spelled out: a 30-character run name and 100 nodes."""
    env = next(
        e for e in gen.reference_environments() if e.spec.storage.accessMode != "ReadWriteOnce"
    )
    data = load_run(EXAMPLES[0]).model_dump(mode="json")
    data["metadata"]["name"] = "a" * 30
    data["spec"]["environment"] = env.metadata.name
    data["spec"]["training"]["nnodes"] = 100
    manifests = compile_run(PipelineRun.model_validate(data), env)
    trainers = [
        o
        for o in manifests.objects()
        if o["kind"] == "PyTorchJob" and "Worker" in o["spec"]["pytorchReplicaSpecs"]
    ]
    assert len(trainers) == 2
    for job in trainers:
        assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 99
        assert len(f"{job['metadata']['name']}-worker-98") <= 63


# --------------------------------------------------------------------------- (c) secrets


@gen.COMPILER
@given(gen.runs_and_environments())
def test_no_secret_value_can_reach_the_output(pair: tuple[PipelineRun, Environment]) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    referenced = _secret_names(run)
    text = "".join(render_run(manifests).values())
    assert not re.search(r"^kind: Secret$", text, re.M)
    for obj in _all_objects(manifests):
        assert obj["kind"] != "Secret"
        if obj["kind"] == "ConfigMap":
            # The params, or a progress ConfigMap (commitStatusProgress) the step fills in.
            progress = obj["metadata"]["labels"].get(LABEL_PROGRESS) == "true"
            assert set(obj.get("data", {})) == (set() if progress else {"params.json"})
            assert "binaryData" not in obj
        for container in _containers(obj):
            assert "envFrom" not in container
            for var in container.get("env", []):
                if "value" in var:
                    assert var["name"] in LITERAL_ENV, var
                    assert set(var) == {"name", "value"}
                else:
                    assert set(var) == {"name", "valueFrom"}, var
                    assert set(var["valueFrom"]) == {"secretKeyRef"}, var
                    assert var["valueFrom"]["secretKeyRef"]["name"] in referenced, var


# --------------------------------------------------------------------------- (d) hash chain

#: (path of a setting in the spec, index of the first step a change to it must rename)
CHANGES: list[tuple[tuple[str, ...], int]] = [
    (("spec", "sdgData", "attempt"), 0),
    (("spec", "training", "knowledge", "learningRate"), 1),
    (("spec", "training", "knowledge", "epochs"), 1),
    (("spec", "training", "knowledge", "attempt"), 1),
    (("spec", "training", "skills", "learningRate"), 2),
    (("spec", "training", "skills", "epochs"), 2),
    (("spec", "training", "skills", "warmupSteps"), 2),
    (("spec", "training", "skills", "attempt"), 2),
    (("spec", "evaluation", "mtBench", "attempt"), 3),
    (("spec", "evaluation", "final", "fewShots"), 4),
    (("spec", "evaluation", "final", "attempt"), 4),
    (("spec", "output", "attempt"), 5),
    (("spec", "publish", "attempt"), 6),
    (("spec", "taxonomy", "pullRequests"), 6),
    (("spec", "attempt"), 0),
]
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "attempt": st.integers(0, 1000),
    "learningRate": st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    "epochs": st.integers(1, 100),
    "warmupSteps": st.integers(0, 1_000_000),
    "fewShots": st.integers(0, 25),
    "pullRequests": gen.pull_requests(),
}


def _model_value(run: PipelineRun, path: tuple[str, ...]) -> Any:
    value = functools.reduce(getattr, path, run)
    return list(value) if isinstance(value, list) else value


def _assert_renamed_from(before: Manifests, after: Manifests, first: int) -> None:
    for old, new in zip(before.steps, after.steps, strict=True):
        assert old.step_id == new.step_id
        if old.index < first:
            assert new.name == old.name, f"{old.step_id} renamed by a later change"
            assert new.objects == old.objects
            assert yaml_emit.dump_all(new.objects) == yaml_emit.dump_all(old.objects)
        else:
            assert new.name != old.name, f"{old.step_id} kept its name"
            assert new.digest != old.digest


@pytest.mark.parametrize(("path", "first"), CHANGES, ids=[".".join(p[1:]) for p, _ in CHANGES])
@settings(gen.DERANDOMIZED, max_examples=12)
@given(pair=gen.specs_and_environments(), data=st.data())
def test_a_change_renames_its_step_and_every_later_one(
    path: tuple[str, ...], first: int, pair: tuple[gen.Spec, Environment], data: st.DataObject
) -> None:
    spec, env = pair
    run = PipelineRun.model_validate(spec)
    old = _model_value(run, path)
    new = data.draw(_VALUES[path[-1]].filter(lambda v: v != old), label=".".join(path))
    changed = PipelineRun.model_validate(gen.set_path(spec, path, new, run.model_dump(mode="json")))
    assert _model_value(changed, path) == new
    _assert_renamed_from(compile_run(run, env), compile_run(changed, env), first)


def test_changes_cover_every_step() -> None:
    assert {first for _, first in CHANGES} == set(range(len(STEP_IDS)))


# --------------------------------------------------------------------------- spec strings


@gen.COMPILER
@given(gen.runs_and_environments())
def test_free_text_settings_reach_the_step_params_verbatim(
    pair: tuple[PipelineRun, Environment],
) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    params = {step.step_id: _params(step.objects) for step in manifests.steps}
    base = run.spec.baseModel
    if base.s3 is not None:
        assert params["prepare"]["baseModel"]["prefix"] == base.s3.prefix
    assert params["prepare"]["taxonomy"]["repoUrl"] == run.spec.taxonomy.repoUrl
    assert params["publish"]["taxonomy"]["pullRequests"] == run.spec.taxonomy.pullRequests


def test_placeholder_text_in_a_spec_string_is_kept() -> None:
    data = load_run(ROOT / "spec" / "examples" / "production.yaml").model_dump(mode="json")
    data["spec"]["baseModel"]["s3"]["prefix"] = "models/step-name-placeholder"
    env = load_environment(ROOT / "environments" / "single-node-4xh100.yaml")
    manifests = compile_run(PipelineRun.model_validate(data), env)
    params = _params(manifests.steps[0].objects)
    assert params["baseModel"]["prefix"] == "models/step-name-placeholder"


# --------------------------------------------------------------------------- build once


def _built_twice(run: PipelineRun, env: Environment) -> list[list[K8sObject]]:
    """Each step's objects the straightforward way: hash a draft built under a placeholder
    name, then build everything again under the name derived from that hash."""
    from ilab_gitops.manifests import hashing, pods, progress
    from ilab_gitops.manifests.compile import step_name
    from ilab_gitops.manifests.model import step_wave
    from ilab_gitops.manifests.steps import PLANS, step_dir
    from ilab_gitops.manifests.workloads import params_configmap, workload

    name = run.metadata.name
    previous = hashing.chain_seed(name, run.spec.attempt)
    names: dict[str, str] = {}
    out: list[list[K8sObject]] = []
    for index, (step_id, builder) in enumerate(zip(STEP_IDS, PLANS, strict=True)):
        plan = progress.with_access(builder(run, env, names), env, name)
        annotations = {pods.ANNOTATION_WAVE: str(step_wave(index))}
        if step_id == "publish":
            annotations[pods.ANNOTATION_SPEC_SHA] = hashing.spec_sha256(run)

        def build(
            object_name: str, notes: dict[str, str], *, draft: bool, plan: Any = plan
        ) -> list[K8sObject]:
            params = {**plan.params, "stepName": object_name, "outputPath": step_dir(object_name)}
            text: Any = params if draft else hashing.pretty_json(params) + "\n"
            return [
                params_configmap(plan, env, name, object_name, notes, text=text),
                workload(plan, env, name, object_name, notes),
            ]

        draft = hashing.canonical_json(build("step-name-placeholder", annotations, draft=True))
        digest = hashing.chain(previous, draft)
        names[step_id] = step_name(name, step_id, digest)
        notes = {**annotations, pods.ANNOTATION_STEP_HASH: digest}
        out.append(build(names[step_id], notes, draft=False))
        previous = digest
    return out


@gen.COMPILER
@given(gen.runs_and_environments())
def test_each_step_built_once_equals_building_it_again_under_its_name(
    pair: tuple[PipelineRun, Environment],
) -> None:
    """compile_run builds a step's objects once and names them in place; the result is the
    same as hashing a draft and building every object again under the final name."""
    run, env = pair
    compiled = compile_run(run, env)
    expected = _built_twice(run, env)
    got = [list(step.objects[-2:]) for step in compiled.steps]
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert "step-name-placeholder" not in json.dumps(got)
