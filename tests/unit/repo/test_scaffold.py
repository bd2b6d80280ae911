"""`ilab-gitops init`: what it writes, that it is valid, and that it never clobbers files."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path

import pytest
import yaml

from ilab_gitops import yaml_emit
from ilab_gitops.bootstrap import argocd_bootstrap, flux_bootstrap
from ilab_gitops.manifests import STEP_IDS
from ilab_gitops.repo import classify
from ilab_gitops.repo.scaffold import (
    EXAMPLE_RUN,
    InitOptions,
    ScaffoldError,
    environments_source,
    plan,
    reference_environments,
)
from ilab_gitops.sources import parse_yaml
from ilab_gitops.workspace import load_workspace
from tests.conftest import ROOT
from tests.unit.repo.conftest import Cli
from tests.unit.repo.specs import diff, example_run, only

URL = "https://github.com/example/runs.git"


def test_default_plan_lists_every_file() -> None:
    files = plan(InitOptions())
    run = "rendered/kind-dev/granite-example"
    assert sorted(p for p in files if not p.startswith(f"{run}/")) == [
        ".gitattributes",
        ".github/workflows/pr-comment.yml",
        ".github/workflows/render.yml",
        ".github/workflows/results-sync.yml",
        ".github/workflows/validate.yml",
        "README.md",
        "environments/kind-dev.yaml",
        "environments/multi-node-gpu.yaml",
        "environments/single-node-4xh100.yaml",
        "rendered/kind-dev/kustomization.yaml",
        "rendered/kustomization.yaml",
        "rendered/multi-node-gpu/kustomization.yaml",
        "rendered/single-node-4xh100/kustomization.yaml",
        "runs/example.yaml",
    ]
    assert any(p.startswith(f"{run}/flux/") for p in files)
    assert not any("%%" in text for text in files.values())


def test_environments_have_one_source_the_repository_folder() -> None:
    assert Path(str(environments_source())) == ROOT / "environments"
    files = plan(InitOptions())
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        assert files[f"environments/{path.name}"] == path.read_text(encoding="utf-8")


def test_wheel_carries_the_reference_environments() -> None:
    """A wheel has no repository root: pyproject must map environments/ into the package."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = data["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel.get("force-include", {}).get("environments") == (
        "ilab_gitops/templates/environments"
    ), "add to pyproject.toml: [tool.hatch.build.targets.wheel.force-include] "
    '"environments" = "ilab_gitops/templates/environments"'


@pytest.mark.parametrize("environment", sorted(n[:-5] for n in reference_environments()))
def test_example_is_valid_for_every_bundled_environment(tmp_path: Path, environment: str) -> None:
    files = plan(InitOptions(environment=environment))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    ws = load_workspace([tmp_path / "runs"], tmp_path / "environments")
    assert ws.ok, ws.diagnostics
    assert [r.run.spec.environment for r in ws.runs] == [environment]


def test_init_writes_a_repo_that_validates_and_renders_unchanged(
    tmp_path: Path, run_cli: Cli
) -> None:
    target = tmp_path / "new"
    result = run_cli("init", str(target), "--engine", "argocd", "--repo-url", URL, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.err.startswith(f"wrote 24 file(s) into {target}/\n")
    assert run_cli("validate", "runs", cwd=target).code == 0
    check = run_cli("render", "runs", "--check", cwd=target)
    assert (check.code, check.err) == (0, "rendered: up to date (1 run(s))\n")
    assert not (target / "bootstrap" / "flux.yaml").exists()


def test_bootstrap_files_are_the_engines_objects(tmp_path: Path, run_cli: Cli) -> None:
    args = ["--engine", "flux", "--engine", "argocd", "--environment", "multi-node-gpu"]
    result = run_cli("init", str(tmp_path / "r"), *args, "--repo-url", URL, cwd=tmp_path)
    assert result.code == 2
    assert 'environment "multi-node-gpu" is not applied by argocd' in result.err
    result = run_cli(
        "init", str(tmp_path / "r"), *args[:2], *args[4:], "--repo-url", URL, cwd=tmp_path
    )
    assert result.code == 0, result.err
    flux = (tmp_path / "r" / "bootstrap" / "flux.yaml").read_text()
    expected = flux_bootstrap(
        URL,
        rendered_path="rendered",
        namespace="flux-system",
        source_name="ilab-runs",
        environment="multi-node-gpu",
    )
    assert flux.endswith(yaml_emit.dump_all(expected))
    assert list(yaml.safe_load_all(flux)) == expected
    argocd = plan(InitOptions(engines=("argocd",), repo_url=URL))["bootstrap/argocd.yaml"]
    assert list(yaml.safe_load_all(argocd)) == argocd_bootstrap(
        URL, namespace="ilab-dev", environment="kind-dev"
    )
    assert "kubectl apply --server-side --field-manager=ilab-gitops" in argocd


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (InitOptions(engines=("argocd",)), "--repo-url is needed to write the bootstrap of argocd"),
        (InitOptions(environment="nope"), 'unknown environment "nope" (bundled: kind-dev,'),
        (InitOptions(repo_url="not a url"), '--repo-url "not a url" is not a git URL'),
        (InitOptions(workflows="owner/name"), '--workflows "owner/name" is not OWNER/NAME@REF'),
    ],
)
def test_bad_options_are_refused(options: InitOptions, message: str) -> None:
    with pytest.raises(ScaffoldError) as err:
        plan(options)
    assert str(err.value).startswith(message)


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path, run_cli: Cli) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "README.md").write_text("mine\n")
    (target / "runs").mkdir()
    (target / "runs" / "example.yaml").write_text("mine too\n")
    result = run_cli("init", str(target), cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        f"ilab-gitops init: 2 file(s) already exist in {target}; nothing was written "
        "(use --force to overwrite them):\n  README.md\n  runs/example.yaml\n"
    )
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "README.md",
        "runs",
        "runs/example.yaml",
    ]
    forced = run_cli("init", str(target), "--force", cwd=tmp_path)
    assert forced.code == 0, forced.err
    assert (target / "README.md").read_text().startswith("# Training runs\n")


def test_a_file_in_the_way_blocks_even_with_force(tmp_path: Path, run_cli: Cli) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "rendered").write_text("a file where a folder belongs\n")
    result = run_cli("init", str(target), "--force", cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith(f"ilab-gitops init: cannot create these paths in {target}:")
    assert sorted(p.name for p in target.iterdir()) == ["rendered"]


def test_force_keeps_other_runs_in_the_flux_index(tmp_path: Path) -> None:
    existing = {
        "kind-dev/other/flux/kustomization.yaml": "x\n",
        "kind-dev/other/01-prepare/job.yaml": "y\n",
    }
    files = plan(InitOptions(), existing)
    index = files["rendered/kind-dev/kustomization.yaml"]
    assert "- granite-example/flux" in index and "- other/flux" in index
    assert "resources: []" in files["rendered/kustomization.yaml"]


def test_readme_names_every_forbidden_code() -> None:
    readme = plan(InitOptions())["README.md"]
    source = Path(classify.__file__).read_text()
    codes = set(re.findall(r'"((?:run|environment|attempt|name)-[a-z]+)"', source))
    assert codes == {
        "run-renamed",
        "run-deleted",
        "environment-changed",
        "attempt-decreased",
        "name-reused",
    }
    for code in codes:
        assert f"`{code}`" in readme


def test_readme_retry_table_bumps_the_right_step(tmp_path: Path) -> None:
    """Each counter the README names really re-runs from the step it names."""
    readme = plan(InitOptions())["README.md"]
    rows = re.findall(r"^\| ([a-z0-9-]+|every step) \| `(spec\.[A-Za-z.]+)` \|$", readme, re.M)
    assert [step for step, _ in rows] == [*STEP_IDS, "every step"]
    base = example_run()
    for step, field in rows:
        data = parse_yaml(base.encode(), "a.yaml").data  # YAML 1.2: 2e-5 is a float
        node = data
        *parents, last = field.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = 1
        run = only(diff(tmp_path, {"runs/a.yaml": base}, {"runs/a.yaml": yaml_emit.dump(data)}))
        assert run.first_rerun is not None
        assert run.first_rerun.step_id == (STEP_IDS[0] if step == "every step" else step)


def test_example_run_is_the_template(tmp_path: Path) -> None:
    text = plan(InitOptions(environment="single-node-4xh100"))[EXAMPLE_RUN]
    assert "environment: single-node-4xh100" in text
    assert text.startswith("# An example run.")


def test_operations_guide_has_the_same_retry_table() -> None:
    pattern = re.compile(r"^\| ([a-z0-9-]+|every step) \| `(spec\.[A-Za-z.]+)` \|$", re.M)
    readme = plan(InitOptions())["README.md"]
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert pattern.findall(guide) == pattern.findall(readme) != []


def test_readme_explains_every_status() -> None:
    readme = plan(InitOptions())["README.md"]
    documented = re.findall(r"^\| ([a-z]+) \| ", readme, re.M)
    assert set(typing.get_args(classify.Status)) <= set(documented)
