"""The admission policy on the runs' RBAC (commitStatusProgress): its CEL, run by cel-python,
admits every Role and RoleBinding the compiler emits and refuses the ones a tampered
`rendered/` tree would need to widen a pod's access; it applies to the engine's requests only.

cel-python stands in for the API server's cel-go; the expressions use only what both have
(`has`, `size`, `all`, `endsWith`, list equality)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel

from ilab_gitops.engines.bootstrap.policy import progress_rbac_policy
from ilab_gitops.manifests import compile_run
from tests.support.k8s_schemas import builtin_errors
from tests.support.specs import EXAMPLES, load_environment, load_run

ROOT = Path(__file__).resolve().parents[3]
ARGOCD = "system:serviceaccount:argocd:argocd-application-controller"
#: OpenShift GitOps names its controller after the instance.
OPENSHIFT = "system:serviceaccount:argocd:openshift-gitops-argocd-application-controller"
POLICY, BINDING = progress_rbac_policy("ilab", "argocd", "argocd")


def _rbac_objects() -> list[dict[str, Any]]:
    env = load_environment(ROOT / "environments" / "single-node-trainer.yaml")
    assert env.spec.commitStatusProgress
    found = [
        obj
        for path in EXAMPLES
        for obj in compile_run(load_run(path), env).objects()
        if obj["kind"] in ("Role", "RoleBinding")
    ]
    assert found
    return found


def _evaluate(expression: str, obj: dict[str, Any], user: str = ARGOCD) -> bool:
    resource = {"Role": "roles", "RoleBinding": "rolebindings"}[obj["kind"]]
    activation = {
        "object": json_to_cel(obj),
        "request": json_to_cel(
            {"resource": {"resource": resource}, "userInfo": {"username": user}}
        ),
    }
    env = celpy.Environment()
    value = env.program(env.compile(expression)).evaluate(activation)
    assert not isinstance(value, Exception), value
    return bool(value)


def admitted(obj: dict[str, Any], user: str = ARGOCD) -> bool:
    """What the API server decides for `obj` written by `user` in the runs namespace."""
    (condition,) = POLICY["spec"]["matchConditions"]
    if not _evaluate(condition["expression"], obj, user):
        return True  # the policy does not apply
    return all(_evaluate(v["expression"], obj, user) for v in POLICY["spec"]["validations"])


def test_policy_objects_are_valid_and_bound_to_the_runs_namespace() -> None:
    assert builtin_errors(POLICY, "1.30") == [] and builtin_errors(BINDING, "1.30") == []
    assert BINDING["spec"]["policyName"] == POLICY["metadata"]["name"]
    assert BINDING["spec"]["validationActions"] == ["Deny"]
    assert POLICY["spec"]["failurePolicy"] == "Fail"


def test_what_the_compiler_emits_is_admitted() -> None:
    for obj in _rbac_objects():
        assert admitted(obj), obj["metadata"]["name"]


def _hostile() -> list[tuple[str, dict[str, Any]]]:
    role = next(o for o in _rbac_objects() if o["kind"] == "Role")
    binding = next(o for o in _rbac_objects() if o["kind"] == "RoleBinding")
    cases: list[tuple[str, dict[str, Any]]] = []

    def variant(label: str, base: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
        obj = copy.deepcopy(base)
        node = obj
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        cases.append((label, obj))

    variant("secrets", role, ("rules", 0, "resources"), ["secrets"])
    variant("any verb", role, ("rules", 0, "verbs"), ["*"])
    variant("get too", role, ("rules", 0, "verbs"), ["get", "patch"])
    variant("any configmap", role, ("rules", 0), {**role["rules"][0], "resourceNames": []})
    variant("a params configmap", role, ("rules", 0, "resourceNames"), ["granite-a-prepare-1"])
    variant("two rules", role, ("rules",), [*role["rules"], role["rules"][0]])
    variant("pods", role, ("rules", 0, "resources"), ["configmaps", "pods"])
    variant(
        "cluster admin",
        binding,
        ("roleRef",),
        {**binding["roleRef"], "kind": "ClusterRole", "name": "admin"},
    )
    variant("another role", binding, ("roleRef", "name"), "edit")
    variant(
        "a person",
        binding,
        ("subjects", 0),
        {"kind": "User", "name": "mallory-progress", "apiGroup": "rbac.authorization.k8s.io"},
    )
    variant("another namespace", binding, ("subjects", 0, "namespace"), "kube-system")
    variant("another account", binding, ("subjects", 0, "name"), "default")
    variant("two subjects", binding, ("subjects",), [*binding["subjects"], binding["subjects"][0]])
    return cases


@pytest.mark.parametrize(("label", "obj"), _hostile(), ids=[label for label, _ in _hostile()])
def test_what_a_tampered_tree_would_need_is_refused(label: str, obj: dict[str, Any]) -> None:
    assert not admitted(obj)
    assert not admitted(obj, user=OPENSHIFT)
    # People and controllers outside the engine's namespace are not the policy's business.
    assert admitted(obj, user="kubernetes-admin")
    assert admitted(obj, user="system:serviceaccount:argocd-other:argocd-application-controller")


def test_the_policy_names_each_engines_own_account() -> None:
    (_, flux_binding) = progress_rbac_policy("lab", "flux", "flux-system")
    flux_policy = progress_rbac_policy("lab", "flux", "flux-system")[0]
    assert flux_policy["spec"]["matchConditions"][0]["expression"] == (
        "request.userInfo.username.startsWith('system:serviceaccount:flux-system:')"
    )
    assert flux_binding["metadata"]["name"] == "ilab-gitops-progress-rbac-flux-lab"
    # One Environment bootstrapped for both engines keeps both policies.
    assert POLICY["metadata"]["name"] == "ilab-gitops-progress-rbac-argocd-ilab"
