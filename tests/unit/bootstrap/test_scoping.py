"""Per-cluster scoping: each engine, bootstrapped for one environment, reaches exactly its runs.

A real tree is rendered (three runs, one per reference environment) and each engine's reach
is evaluated on it: the Argo CD git directory generator's path globs (Go `path.Match`: `*`
never crosses `/`) over every folder of the repo, and the Flux parent Kustomization followed
through the kustomization.yaml files down to the step Kustomizations and the folders they
apply, within what the GitRepository's ignore rules let into the artifact.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.engines.bootstrap import argocd_bootstrap, flux_bootstrap
from ilab_gitops.spec.environment import Environment
from tests.security.cli import run_main
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment

REPO = "https://github.com/example/ilab-runs.git"
ENVS = {load_environment(p).metadata.name: load_environment(p) for p in ENVIRONMENTS}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs repo with one run per environment, rendered by the CLI."""
    root = tmp_path_factory.mktemp("scoping")
    (root / "runs").mkdir()
    minimal = next(p for p in EXAMPLES if p.name == "minimal.yaml").read_text()
    for env in ENVS:
        text = minimal.replace("name: granite-minimal", f"name: run-{env}")
        (root / "runs" / f"{env}.yaml").write_text(
            text.replace("environment: kind-dev", f"environment: {env}")
        )
    (root / "environments").mkdir()
    for path in ENVIRONMENTS:
        (root / "environments" / path.name).write_bytes(path.read_bytes())
    done = run_main(["render", "runs"], root)
    assert done.returncode == 0, done.stderr
    return root


def _match(pattern: str, path: str) -> bool:
    """Go's path.Match for the patterns used here: segment by segment, `*` within one."""
    parts, names = pattern.split("/"), path.split("/")
    return len(parts) == len(names) and all(
        fnmatch.fnmatchcase(n, p) for p, n in zip(parts, names, strict=True)
    )


def _folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


@pytest.mark.parametrize("env", sorted(ENVS))
def test_argocd_generator_reaches_only_its_environment(repo: Path, env: str) -> None:
    objects = argocd_bootstrap(REPO, namespace=ENVS[env].spec.namespace, environment=env)
    appset = next(o for o in objects if o["kind"] == "ApplicationSet")
    globs = [d["path"] for g in appset["spec"]["generators"] for d in g["git"]["directories"]]
    apps = {f for f in _folders(repo) if any(_match(g, f) for g in globs)}
    assert apps == {f"rendered/{env}/run-{env}"}
    others = [f"run-{e}" for e in ENVS if e != env]
    assert not any(name in app for app in apps for name in others)


def _load(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _inside(root: Path, path: Path, allowed: str) -> bool:
    return f"{path.relative_to(root).as_posix()}/".startswith(allowed)


def _resolve(root: Path, folder: Path, allowed: str) -> list[dict[str, Any]]:
    """Objects `kustomize build` of `folder` yields (resources only, as our trees use)."""
    assert _inside(root, folder, allowed), folder
    out: list[dict[str, Any]] = []
    (index,) = _load(folder / "kustomization.yaml")
    for resource in index.get("resources", []):
        target = (folder / resource).resolve()
        if target.is_dir():
            out.extend(_resolve(root, target, allowed))
        else:
            assert _inside(root, target, allowed), target
            out.extend(_load(target))
    return out


def _artifact_prefix(ignore: str) -> str:
    """What the GitRepository's `ignore` lets into the artifact: `/*` then one `!/dir/`."""
    lines = ignore.splitlines()
    assert lines[0] == "/*" and len(lines) == 2 and lines[1].startswith("!/"), ignore
    return lines[1][2:]


@pytest.mark.parametrize("env", sorted(ENVS))
def test_flux_parent_reaches_only_its_environment(repo: Path, env: str) -> None:
    flux = ENVS[env].spec.flux
    objects = flux_bootstrap(
        REPO,
        rendered_path=flux.renderedPath,
        namespace=flux.namespace,
        source_name=flux.sourceName,
        environment=env,
    )
    source = next(o for o in objects if o["kind"] == "GitRepository")
    parent = next(o for o in objects if o["kind"] == "Kustomization")
    allowed = _artifact_prefix(source["spec"]["ignore"])
    assert allowed == f"rendered/{env}/"
    start = repo / parent["spec"]["path"]
    steps = _resolve(repo, start.resolve(), allowed)
    runs = {s["metadata"]["labels"]["gitops.instructlab.ai/run"] for s in steps}
    expected = {f"run-{env}"} if "flux" in ENVS[env].spec.engines else set()
    assert runs == expected
    for step in steps:
        assert step["kind"] == "Kustomization"
        applied = repo / step["spec"]["path"]
        assert applied.is_dir()
        objs = (
            _resolve(repo, applied.resolve(), allowed)
            if (applied / "kustomization.yaml").is_file()
            else [o for f in sorted(applied.glob("*.yaml")) for o in _load(f)]
        )
        labels = {o["metadata"]["labels"]["gitops.instructlab.ai/run"] for o in objs}
        assert labels == {f"run-{env}"}


def test_root_index_applies_nothing(repo: Path) -> None:
    """A parent still pointed at `rendered/` itself (bootstrap from before) applies no run."""
    (index,) = _load(repo / "rendered" / "kustomization.yaml")
    assert index["resources"] == []


def test_every_environment_has_an_index(repo: Path) -> None:
    for env in ENVS.values():
        assert isinstance(env, Environment)
        assert (repo / "rendered" / env.metadata.name / "kustomization.yaml").is_file()
