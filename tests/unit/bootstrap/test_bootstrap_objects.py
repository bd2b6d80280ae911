"""The Argo CD and Flux bootstrap objects, checked against the upstream CRDs."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from ilab_gitops.emit.render import FLUX_FOLDER
from ilab_gitops.engines.bootstrap import argocd_bootstrap, flux_bootstrap
from ilab_gitops.manifests import compile_run
from tests.support.k8s_schemas import builtin_errors, crd_errors, upstream_schemas
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run
from tests.unit.bootstrap.health import FIXTURES, load_object

REPO = "https://github.com/example/ilab-runs.git"
EMITTED_KINDS = [
    {"group": "", "kind": "ConfigMap"},
    {"group": "", "kind": "PersistentVolumeClaim"},
    {"group": "batch", "kind": "Job"},
    {"group": "kubeflow.org", "kind": "PyTorchJob"},
    {"group": "networking.k8s.io", "kind": "NetworkPolicy"},
    {"group": "trainer.kubeflow.org", "kind": "TrainJob"},
]


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Objects by kind; ConfigMaps (several argocd fragments) by name."""
    keys = [o["metadata"]["name"] if o["kind"] == "ConfigMap" else o["kind"] for o in objects]
    assert len(keys) == len(set(keys)), keys
    return dict(zip(keys, objects, strict=True))


@pytest.fixture(scope="module")
def argocd() -> dict[str, dict[str, Any]]:
    return _by_kind(argocd_bootstrap(REPO, environment="kind-dev"))


@pytest.fixture(scope="module")
def flux() -> dict[str, dict[str, Any]]:
    return _by_kind(flux_bootstrap(REPO, environment="kind-dev"))


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize(
    "objects",
    [
        lambda: argocd_bootstrap(REPO, environment="kind-dev"),
        lambda: argocd_bootstrap(
            "git@github.com:example/runs.git",
            revision="release-1",
            rendered_path="deploy/rendered",
            namespace="ml-runs",
            argocd_namespace="openshift-gitops",
            project="ml",
            environment="prod",
        ),
        lambda: flux_bootstrap(REPO, environment="kind-dev"),
        lambda: flux_bootstrap(
            "ssh://git@github.com/example/runs.git",
            branch="release-1",
            rendered_path="deploy/rendered",
            namespace="flux-runs",
            source_name="runs",
            environment="prod",
        ),
    ],
    ids=["argocd-defaults", "argocd-custom", "flux-defaults", "flux-custom"],
)
def test_every_object_is_valid(objects: Callable[[], list[dict[str, Any]]]) -> None:
    upstream_schemas()
    for obj in objects():
        if obj["kind"] == "ConfigMap":
            assert builtin_errors(obj, "1.31") == []
        elif obj["kind"] == "AppProject":
            continue  # no vendored CRD: checked by the assertions below
        else:
            assert crd_errors(obj) == [], obj["kind"]


def test_the_validator_catches_a_broken_applicationset(argocd: dict[str, Any]) -> None:
    upstream_schemas()
    broken = copy.deepcopy(argocd["ApplicationSet"])
    broken["spec"]["template"]["spec"]["syncPolicy"]["automated"]["selfHeal"] = "no"
    broken["spec"]["generators"][0]["git"]["directories"][0]["recurse"] = True
    assert len(crd_errors(broken)) == 2


def test_status_fixtures_match_the_crds() -> None:
    """The hand-written fixtures are shaped like real objects."""
    upstream_schemas()
    for kind in ("pytorchjob", "trainjob"):
        for path in sorted((FIXTURES / kind).glob("*.yaml")):
            assert crd_errors(load_object(path)) == [], path
    for path in sorted((FIXTURES / "job").glob("*.yaml")):
        assert builtin_errors(load_object(path), "1.31") == [], path


def test_objects_are_plain_json_and_stable() -> None:
    for build in (argocd_bootstrap, flux_bootstrap):
        first = build(REPO, environment="kind-dev")
        assert json.loads(json.dumps(first)) == first
        assert list(yaml.safe_load_all(yaml.safe_dump_all(first))) == first
        assert build(REPO, environment="kind-dev") == first


# --------------------------------------------------------------------------- Argo CD


def test_argocd_cm_is_a_fragment(argocd: dict[str, Any]) -> None:
    cm = argocd["argocd-cm"]
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["metadata"]["namespace"] == "argocd"
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert sorted(cm["data"]) == [
        "resource.customizations.health.batch_Job",
        "resource.customizations.health.kubeflow.org_PyTorchJob",
        "resource.customizations.health.trainer.kubeflow.org_TrainJob",
    ]
    assert all(isinstance(text, str) and "return hs" in text for text in cm["data"].values())


def test_app_project_is_limited_to_the_runs(argocd: dict[str, Any]) -> None:
    project = argocd["AppProject"]
    assert project["apiVersion"] == "argoproj.io/v1alpha1"
    assert project["metadata"] == {
        "name": "ilab-runs",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/part-of": "ilab-gitops"},
    }
    spec = project["spec"]
    assert set(spec) == {
        "description",
        "sourceRepos",
        "destinations",
        "clusterResourceWhitelist",
        "namespaceResourceWhitelist",
    }
    assert spec["sourceRepos"] == [REPO]
    assert spec["destinations"] == [
        {"server": "https://kubernetes.default.svc", "namespace": "ilab"}
    ]
    assert spec["clusterResourceWhitelist"] == []
    assert sorted(spec["namespaceResourceWhitelist"], key=lambda r: (r["group"], r["kind"])) == (
        EMITTED_KINDS
    )
    for entry in spec["namespaceResourceWhitelist"]:
        assert set(entry) == {"group", "kind"}
        assert "*" not in entry["group"] and "*" not in entry["kind"]


def test_app_project_covers_every_kind_the_compiler_emits(argocd: dict[str, Any]) -> None:
    """Every object compiled from the examples, for every reference environment, is allowed."""
    whitelist = argocd["AppProject"]["spec"]["namespaceResourceWhitelist"]
    plain = {(entry["group"], entry["kind"]) for entry in whitelist}
    assert EXAMPLES and ENVIRONMENTS
    seen: set[tuple[str, str]] = set()
    progress_envs = 0
    for env_path in ENVIRONMENTS:
        env = load_environment(env_path)
        progress = env.spec.commitStatusProgress
        progress_envs += progress
        project = argocd_bootstrap(REPO, environment=env.metadata.name, progress=progress)[3]
        allowed = {(e["group"], e["kind"]) for e in project["spec"]["namespaceResourceWhitelist"]}
        assert (allowed > plain) is progress
        for run_path in EXAMPLES:
            manifests = compile_run(load_run(run_path), env)
            kinds = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in manifests.objects()}
            assert all(
                o["metadata"]["namespace"] == manifests.namespace for o in manifests.objects()
            )
            assert kinds <= allowed, (env_path.name, kinds - allowed)
            # Role and RoleBinding only where the Environment asks for progress.
            assert (("rbac.authorization.k8s.io", "Role") in kinds) is progress
            seen |= kinds
    assert progress_envs >= 1
    assert ("kubeflow.org", "PyTorchJob") in seen and ("batch", "Job") in seen


def test_applicationset_one_application_per_run(argocd: dict[str, Any]) -> None:
    appset = argocd["ApplicationSet"]
    spec = appset["spec"]
    assert appset["metadata"]["namespace"] == "argocd"
    assert spec["goTemplate"] is True
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    assert spec["generators"] == [
        {
            "git": {
                "repoURL": REPO,
                "revision": "main",
                "directories": [{"path": "rendered/kind-dev/*"}],
            }
        }
    ]
    assert spec["syncPolicy"] == {"preserveResourcesOnDeletion": True}
    template = spec["template"]
    assert template["metadata"]["name"] == "{{.path.basename}}"
    app = template["spec"]
    assert app["project"] == "ilab-runs"
    assert app["source"] == {
        "repoURL": REPO,
        "targetRevision": "main",
        "path": "{{.path.path}}",
        "directory": {"recurse": True, "exclude": f"{FLUX_FOLDER}/*"},
    }
    assert app["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "ilab"}
    policy = app["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": False}
    assert policy["syncOptions"] == ["ApplyOutOfSyncOnly=true", "CreateNamespace=false"]
    assert policy["retry"]["limit"] == 3
    assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}


def test_applicationset_templates_are_consistent(argocd: dict[str, Any]) -> None:
    """goTemplate: every placeholder is Go-style and names a git directory generator param."""
    text = json.dumps(argocd["ApplicationSet"]["spec"]["template"])
    placeholders = set(re.findall(r"\{\{[^}]*\}\}", text))
    assert placeholders == {"{{.path.basename}}", "{{.path.path}}"}


def test_argocd_parameters_are_used() -> None:
    objs = _by_kind(
        argocd_bootstrap(
            REPO,
            revision="v2",
            rendered_path="deploy/rendered/",
            namespace="ml-runs",
            argocd_namespace="gitops",
            project="ml",
            environment="prod",
        )
    )
    assert {o["metadata"]["namespace"] for o in objs.values()} == {"gitops"}
    appset = objs["ApplicationSet"]["spec"]
    assert appset["generators"][0]["git"]["revision"] == "v2"
    assert appset["generators"][0]["git"]["directories"] == [{"path": "deploy/rendered/prod/*"}]
    assert appset["template"]["spec"]["source"]["targetRevision"] == "v2"
    assert appset["template"]["spec"]["project"] == "ml"
    assert appset["template"]["spec"]["destination"]["namespace"] == "ml-runs"
    assert objs["AppProject"]["metadata"]["name"] == "ml"
    assert objs["AppProject"]["spec"]["destinations"][0]["namespace"] == "ml-runs"


# --------------------------------------------------------------------------- Flux


def test_flux_git_repository(flux: dict[str, Any]) -> None:
    repo = flux["GitRepository"]
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert repo["metadata"]["name"] == "ilab-runs"
    assert repo["metadata"]["namespace"] == "flux-system"
    assert repo["spec"]["url"] == REPO
    assert repo["spec"]["ref"] == {"branch": "main"}
    assert repo["spec"]["ignore"] == "/*\n!/rendered/kind-dev/\n"


def test_flux_parent_kustomization(flux: dict[str, Any]) -> None:
    parent = flux["Kustomization"]
    assert parent["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert parent["metadata"]["namespace"] == "flux-system"
    spec = parent["spec"]
    assert spec["path"] == "./rendered/kind-dev"
    assert spec["prune"] is True
    assert spec["wait"] is False
    assert "healthChecks" not in spec and "healthCheckExprs" not in spec
    # The parent applies Kustomizations into their own namespace: it must not re-target them.
    assert "targetNamespace" not in spec
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": "ilab-runs"}
    assert {"interval", "timeout", "retryInterval"} <= set(spec)


def test_flux_source_matches_what_the_step_kustomizations_reference() -> None:
    """The compiler's step Kustomizations name the source `Environment.spec.flux.sourceName`
    in `Environment.spec.flux.namespace`; the defaults must line up with the bootstrap's."""
    from ilab_gitops.spec.environment import Flux

    defaults = Flux()
    repo = _by_kind(flux_bootstrap(REPO, environment="kind-dev"))["GitRepository"]
    assert repo["metadata"]["name"] == defaults.sourceName
    assert repo["metadata"]["namespace"] == defaults.namespace
    parent = _by_kind(flux_bootstrap(REPO, environment="kind-dev"))["Kustomization"]
    assert parent["spec"]["path"] == f"./{defaults.renderedPath}/kind-dev"


def test_flux_parameters_are_used() -> None:
    objs = _by_kind(
        flux_bootstrap(
            REPO,
            branch="v2",
            rendered_path="deploy/rendered",
            namespace="fx",
            source_name="runs",
            environment="prod",
        )
    )
    assert {o["metadata"]["namespace"] for o in objs.values()} == {"fx"}
    assert objs["GitRepository"]["metadata"]["name"] == "runs"
    assert objs["Kustomization"]["metadata"]["name"] == "runs"
    assert objs["GitRepository"]["spec"]["ref"] == {"branch": "v2"}
    assert objs["GitRepository"]["spec"]["ignore"] == "/*\n!/deploy/rendered/prod/\n"
    assert objs["Kustomization"]["spec"]["path"] == "./deploy/rendered/prod"
    assert objs["Kustomization"]["spec"]["sourceRef"]["name"] == "runs"
