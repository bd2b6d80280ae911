"""Invariants of every compiled run, each stated once, over generated specs.

Golden files show a diff when output changes, but an `--update-goldens` accepts it; these
properties fail on the deliberate one-line bugs that got through that way (issue 12, item 8):
a step that outlives or suspends itself, Flux Kustomizations that stop waiting, pruning or
ordering, and a hash chain that no longer chains. Renaming of later steps when one step's
input changes is the property `test_a_change_renames_its_step_and_every_later_one` in
test_properties.py; here the chain itself is checked link by link.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from ilab_gitops.manifests import K8sObject, Manifests, compile_run, hashing
from ilab_gitops.manifests import compile as compile_module
from ilab_gitops.manifests.pods import ANNOTATION_SPEC_SHA, ANNOTATION_STEP_HASH
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support import strategies as gen


def _keys(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every mapping entry, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, item
            yield from _keys(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys(item, f"{path}[{index}]")


def _everything(manifests: Manifests) -> list[K8sObject]:
    return [*manifests.objects(), *manifests.flux]


@gen.COMPILER
@given(gen.runs_and_environments())
def test_no_object_expires_or_suspends_itself(pair: tuple[PipelineRun, Environment]) -> None:
    """No ttlSecondsAfterFinished (a deleted Job is re-created by the engine and runs again)
    and no suspend (Kueue's webhook owns it; re-applying it would re-suspend a running job)."""
    run, env = pair
    for obj in _everything(compile_run(run, env)):
        for where, _ in _keys(obj):
            last = where.rsplit(".", 1)[-1]
            assert last != "ttlSecondsAfterFinished", f"{obj['kind']}: {where}"
            assert last != "suspend", f"{obj['kind']}: {where}"


@gen.COMPILER
@given(gen.runs_and_environments())
def test_flux_has_one_waiting_pruning_kustomization_per_step_after_the_previous(
    pair: tuple[PipelineRun, Environment],
) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    if "flux" not in env.spec.engines:
        assert manifests.flux == ()
        return
    assert len(manifests.flux) == len(manifests.steps)
    previous: str | None = None
    for step, kustomization in zip(manifests.steps, manifests.flux, strict=True):
        assert kustomization["kind"] == "Kustomization"
        spec = kustomization["spec"]
        assert spec["wait"] is True, step.step_id
        assert spec["prune"] is True, step.step_id
        assert "suspend" not in spec
        assert spec["path"].endswith(f"/{manifests.run}/{step.folder}")
        if previous is None:
            assert "dependsOn" not in spec
        else:
            assert spec["dependsOn"] == [{"name": previous}], step.step_id
        previous = kustomization["metadata"]["name"]
    names = [k["metadata"]["name"] for k in manifests.flux]
    assert len(set(names)) == len(names)


@gen.COMPILER
@given(gen.runs_and_environments())
def test_each_step_hash_chains_the_previous_one(pair: tuple[PipelineRun, Environment]) -> None:
    """Step k's hash is chain(hash of step k-1, step k's content); step 0 starts from the
    run's seed (name and attempt). Each name and step-hash annotation carries that hash."""
    run, env = pair
    links: list[tuple[str, str, str]] = []

    def recording(previous: str, canonical: str) -> str:
        digest = hashing.chain(previous, canonical)
        links.append((previous, canonical, digest))
        return digest

    with mock.patch.object(compile_module, "chain", recording):
        manifests = compile_run(run, env)
    assert len(links) == len(manifests.steps)
    expected_previous = hashing.chain_seed(run.metadata.name, run.spec.attempt)
    for step, (previous, canonical, digest) in zip(manifests.steps, links, strict=True):
        assert previous == expected_previous, f"{step.step_id} does not chain its predecessor"
        assert step.digest == digest == hashing.sha256_text(previous + "\n" + canonical)
        assert step.name.endswith(f"-{step.step_id}-{digest[:8]}")
        for obj in step.objects:
            annotations = obj["metadata"].get("annotations", {})
            if ANNOTATION_STEP_HASH in annotations:
                assert annotations[ANNOTATION_STEP_HASH] == digest
        expected_previous = digest
    assert len({s.digest for s in manifests.steps}) == len(manifests.steps)


@gen.COMPILER
@given(gen.runs_and_environments(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_another_seed_renames_every_step(pair: tuple[PipelineRun, Environment], seed: str) -> None:
    """Black-box: with only the start of the chain changed, every step is renamed, the last
    one too, so each hash depends on all before it and not only on its own content."""
    run, env = pair
    before = compile_run(run, env)
    if seed == hashing.chain_seed(run.metadata.name, run.spec.attempt):
        return
    with mock.patch.object(compile_module, "chain_seed", lambda _run, _attempt: seed):
        after = compile_run(run, env)
    for old, new in zip(before.steps, after.steps, strict=True):
        assert new.digest != old.digest, old.step_id
        assert new.name != old.name, old.step_id


def _annotations(obj: K8sObject) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("annotations", {})
    return found


@gen.COMPILER
@given(gen.runs_and_environments())
def test_the_workspace_and_its_network_policy_come_with_the_first_step_only(
    pair: tuple[PipelineRun, Environment],
) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    kinds = [[o["kind"] for o in step.objects] for step in manifests.steps]
    assert kinds[0][:2] == ["PersistentVolumeClaim", "NetworkPolicy"]
    for later in kinds[1:]:
        assert "PersistentVolumeClaim" not in later and "NetworkPolicy" not in later


@gen.COMPILER
@given(gen.runs_and_environments())
def test_only_the_publish_step_carries_the_spec_hash(pair: tuple[PipelineRun, Environment]) -> None:
    run, env = pair
    manifests = compile_run(run, env)
    for step in manifests.steps:
        for obj in step.objects:
            shown = _annotations(obj).get(ANNOTATION_SPEC_SHA)
            if step.step_id == "publish":
                assert shown == manifests.spec_sha256, obj["kind"]
            else:
                assert shown is None, f"{step.step_id}: {obj['kind']}"


@gen.COMPILER
@given(gen.runs_and_environments())
def test_each_step_reads_its_params_as_json_text(pair: tuple[PipelineRun, Environment]) -> None:
    run, env = pair
    for step in compile_run(run, env).steps:
        (configmap,) = [
            o
            for o in step.objects
            if o["kind"] == "ConfigMap" and o["metadata"]["name"] == step.name
        ]
        text = configmap["data"]["params.json"]
        assert isinstance(text, str) and text.endswith("\n")
        params = json.loads(text)
        assert params["stepName"] == step.name
