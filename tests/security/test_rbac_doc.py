"""The permissions documented for the GitOps engine cover exactly what a run folder holds.

docs/security.md carries the Role an engine needs in the runs namespace. Every kind the
compiler renders into a run folder must be granted there (and allowed by the Argo CD
AppProject), so emitting a new kind without documenting its permissions fails here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ilab_gitops.engines.bootstrap.argocd import NAMESPACED_KINDS, PROGRESS_KINDS
from tests.security.pods import ROOT, golden_objects
from tests.support.specs import load_environment

DOCS = ROOT / "docs" / "security.md"
APPLY = {"get", "list", "watch", "create", "patch"}
#: Kinds the engine applies but never deletes (the run's data outlives the run's objects).
KEPT = {"PersistentVolumeClaim"}


def documented_role() -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    roles = [
        doc for block in blocks if (doc := yaml.safe_load(block)) and doc.get("kind") == "Role"
    ]
    assert len(roles) == 1, "docs/security.md must hold exactly one Role"
    role: dict[str, Any] = roles[0]
    return role


def plural(kind: str) -> str:
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def rendered_kinds() -> set[tuple[str, str]]:
    """(API group, kind) of every object in a run folder (the Flux wiring lives elsewhere)."""
    return {
        (str(obj["apiVersion"]).rpartition("/")[0], obj["kind"])
        for where, obj in golden_objects()
        if "/flux/" not in where
    }


def test_documented_role_grants_every_rendered_kind() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in documented_role()["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    kinds = rendered_kinds()
    assert {kind for _, kind in kinds} >= {
        "ConfigMap",
        "PersistentVolumeClaim",
        "Job",
        "PyTorchJob",
    }
    for group, kind in sorted(kinds):
        verbs = granted.get((group, plural(kind)), set())
        needed = APPLY if kind in KEPT else APPLY | {"delete"}
        assert needed <= verbs, f"{group or 'core'}/{kind}: documented verbs {sorted(verbs)}"
        if kind in KEPT:
            assert "delete" not in verbs, f"{kind} is never deleted by the engine"
    for (group, resource), verbs in granted.items():
        if verbs - {"get", "list", "watch"}:
            assert any(g == group and plural(k) == resource for g, k in kinds), (
                f"{group}/{resource}: write access documented for a kind never rendered"
            )


def test_argocd_project_allows_every_rendered_kind() -> None:
    assert rendered_kinds() <= set(NAMESPACED_KINDS) | set(PROGRESS_KINDS)
    # The progress kinds come only from an Environment that opts in (commitStatusProgress);
    # the AppProject allows them only then (tests/unit/bootstrap).
    for where, obj in golden_objects():
        if (str(obj["apiVersion"]).rpartition("/")[0], obj["kind"]) in PROGRESS_KINDS:
            env = where.split("/", 1)[0].split("--", 1)[1]
            assert load_environment(ROOT / "environments" / f"{env}.yaml").spec.commitStatusProgress


def test_nothing_cluster_scoped_or_secret_is_rendered() -> None:
    namespaced = {
        obj["metadata"].get("namespace") for where, obj in golden_objects() if "/flux/" not in where
    }
    assert None not in namespaced
    kinds = {kind for _, kind in rendered_kinds()}
    assert not kinds & {"Secret", "ClusterRole", "ClusterRoleBinding", "Namespace"}


def test_a_rendered_role_grants_only_its_runs_progress_configmaps() -> None:
    """The Roles a run may hold (commitStatusProgress): each patches one named progress
    ConfigMap of its own run, bound to that step's own account; nothing that widens access."""
    roles = [(w, o) for w, o in golden_objects() if o["kind"] == "Role"]
    bindings = [(w, o) for w, o in golden_objects() if o["kind"] == "RoleBinding"]
    assert roles and len(roles) == len(bindings)
    for _, role in roles:
        run = role["metadata"]["labels"]["gitops.instructlab.ai/run"]
        (rule,) = role["rules"]
        assert rule["apiGroups"] == [""] and rule["resources"] == ["configmaps"]
        assert rule["verbs"] == ["patch"]
        assert rule["resourceNames"] == [role["metadata"]["name"]]
        assert role["metadata"]["name"].startswith(f"{run}-")
        assert role["metadata"]["name"].endswith("-progress")
    for _, binding in bindings:
        run = binding["metadata"]["labels"]["gitops.instructlab.ai/run"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": binding["metadata"]["name"],
        }
        step = binding["metadata"]["labels"]["gitops.instructlab.ai/step"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": f"{run}-{step}-progress",
                "namespace": binding["metadata"]["namespace"],
            }
        ]
