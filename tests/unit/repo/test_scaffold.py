"""`ilab-gitops init`: what it writes, that it is valid, and that it never clobbers files."""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
import typing
from pathlib import Path

import pytest
import yaml

from ilab_gitops.emit import yaml_emit
from ilab_gitops.engines.bootstrap import argocd_bootstrap, flux_bootstrap
from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.load.workspace import load_workspace
from ilab_gitops.manifests import STEP_IDS
from ilab_gitops.runsrepo import classify
from ilab_gitops.runsrepo.scaffold import (
    DEFAULT_WORKFLOWS,
    DEFAULT_WORKFLOWS_SHA,
    EXAMPLE_RUN,
    PROJECT_REPO,
    SCHEMA_DIR,
    InitOptions,
    ScaffoldError,
    default_package,
    environments_source,
    package_from_direct_url,
    plan,
    reference_environments,
    schema_line,
)
from tests.conftest import ROOT
from tests.unit.repo.conftest import Cli
from tests.unit.repo.specs import diff, example_run, only

URL = "https://github.com/example/runs.git"


def test_default_plan_lists_every_file() -> None:
    files = plan(InitOptions())
    assert sorted(files) == [
        ".gitattributes",
        ".github/CODEOWNERS",
        ".github/workflows/pr-comment.yml",
        ".github/workflows/render.yml",
        ".github/workflows/results-sync.yml",
        ".github/workflows/validate.yml",
        ".ilab/schema/environment.schema.json",
        ".ilab/schema/pipelinerun.schema.json",
        ".vscode/settings.json",
        "README.md",
        "environments/kind-dev.yaml",
        "examples/environments/multi-node-gpu.yaml",
        "examples/environments/single-node-4xh100.yaml",
        "examples/environments/single-node-trainer.yaml",
        "examples/example.yaml",
        "rendered/kind-dev/kustomization.yaml",
        "rendered/kustomization.yaml",
        "runs/README.md",
    ]
    assert not any("%%" in text for text in files.values())


def test_no_live_run_and_nothing_rendered_after_init(tmp_path: Path, run_cli: Cli) -> None:
    files = plan(InitOptions(engines=("argocd", "flux"), repo_url=URL))
    # Only the engines' empty entry points: no run folder, so nothing is applied.
    assert sorted(p for p in files if p.startswith("rendered/")) == [
        "rendered/kind-dev/kustomization.yaml",
        "rendered/kustomization.yaml",
    ]
    assert all("resources: []" in files[p] for p in files if p.startswith("rendered/"))
    assert [p for p in files if p.startswith("runs/")] == ["runs/README.md"]
    target = tmp_path / "new"
    assert run_cli("init", str(target), cwd=tmp_path).code == 0
    ws = load_workspace([target / "runs"], target / "environments")
    assert (ws.ok, ws.runs) == (True, [])
    assert sorted(p.name for p in (target / "rendered").iterdir()) == [
        "kind-dev",
        "kustomization.yaml",
    ]
    assert [p.name for p in (target / "rendered" / "kind-dev").iterdir()] == ["kustomization.yaml"]


def test_environments_have_one_source_the_repository_folder() -> None:
    assert Path(str(environments_source())) == ROOT / "environments"
    files = plan(InitOptions())
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        where = "environments" if path.name == "kind-dev.yaml" else "examples/environments"
        line = schema_line("Environment", f"{where}/{path.name}")
        assert files[f"{where}/{path.name}"] == line + path.read_text(encoding="utf-8")


def test_wheel_carries_the_reference_environments() -> None:
    """A wheel has no repository root: pyproject must map environments/ into the package."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = data["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel.get("force-include", {}).get("environments") == (
        "ilab_gitops/runsrepo/templates/environments"
    ), "add to pyproject.toml: [tool.hatch.build.targets.wheel.force-include] "
    '"environments" = "ilab_gitops/runsrepo/templates/environments"'


@pytest.mark.parametrize("environment", sorted(n[:-5] for n in reference_environments()))
def test_example_is_valid_for_every_bundled_environment(tmp_path: Path, environment: str) -> None:
    files = plan(InitOptions(environment=environment))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert sorted(p.name for p in (tmp_path / "environments").iterdir()) == [f"{environment}.yaml"]
    (tmp_path / "runs" / "first.yaml").write_text((tmp_path / EXAMPLE_RUN).read_text())
    ws = load_workspace([tmp_path / "runs"], tmp_path / "environments")
    assert ws.ok, ws.diagnostics
    assert [r.run.spec.environment for r in ws.runs] == [environment]


def test_init_writes_a_repo_that_validates_and_renders_a_copied_example(
    tmp_path: Path, run_cli: Cli
) -> None:
    target = tmp_path / "new"
    result = run_cli("init", str(target), "--engine", "argocd", "--repo-url", URL, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.err.startswith(f"wrote 19 file(s) into {target}/\n")
    assert f"`ilab-gitops doctor {target}`" in result.err
    assert run_cli("validate", "environments", cwd=target).code == 0
    (target / "runs" / "first.yaml").write_text((target / EXAMPLE_RUN).read_text())
    assert run_cli("validate", "runs", cwd=target).code == 0
    assert run_cli("render", "runs", cwd=target).code == 0
    check = run_cli("render", "runs", "--check", cwd=target)
    assert check.code == 0, check.err
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


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (InitOptions(engines=("argocd",)), "--repo-url is needed to write the bootstrap of argocd"),
        (InitOptions(environment="nope"), 'unknown environment "nope" (bundled: kind-dev,'),
        (InitOptions(repo_url="not a url"), '--repo-url "not a url" is not a git URL'),
        (InitOptions(workflows="owner/name"), '--workflows "owner/name" is not OWNER/NAME@SHA'),
        (
            InitOptions(workflows="owner/name@v1.2.0"),
            '--workflows "owner/name@v1.2.0": "v1.2.0" is a tag or branch, which can be moved, '
            "so it does not pin the workflows; give the full 40-character commit SHA",
        ),
        (
            InitOptions(workflows=f"owner/name@{SHA[:12]}"),
            f'--workflows "owner/name@{SHA[:12]}": "{SHA[:12]}" is a tag or branch',
        ),
        (
            InitOptions(package="ilab-gitops[repo]"),
            '--package "ilab-gitops[repo]" is not a pinned install source; give '
            '"ilab-gitops[repo]==VERSION" or '
            '"ilab-gitops[repo] @ git+https://HOST/OWNER/NAME@<40-character commit SHA>"',
        ),
        (
            InitOptions(package="ilab-gitops[repo] @ git+https://github.com/o/r@main"),
            '--package "ilab-gitops[repo] @ git+https://github.com/o/r@main" is not a pinned',
        ),
        (
            InitOptions(package='ilab-gitops==1" ; curl evil'),
            '--package "ilab-gitops==1" ; curl evil" is not a pinned install source',
        ),
        (InitOptions(owners="platform"), '--owners "platform" is not a GitHub team or user'),
        (InitOptions(owners="@org/team extra"), '--owners "@org/team extra" is not a GitHub'),
    ],
)
def test_bad_options_are_refused(options: InitOptions, message: str) -> None:
    with pytest.raises(ScaffoldError) as err:
        plan(options)
    assert str(err.value).startswith(message)


def test_pinned_workflows_reach_the_callers_and_package_the_readme() -> None:
    package = f"ilab-gitops[repo] @ git+https://github.com/example/ilab-gitops@{SHA}"
    files = plan(InitOptions(workflows=f"example/ilab-gitops@{SHA}", package=package))
    validate = files[".github/workflows/validate.yml"]
    assert f"uses: example/ilab-gitops/.github/workflows/ilab-validate.yml@{SHA}" in validate
    assert f'ilab-ref: "{SHA}"' in validate
    assert "package" not in validate  # the workflows install from ilab-ref, with hashes
    assert f"pip install '{package}'" in files["README.md"]
    assert plan(InitOptions(package="ilab-gitops[repo]==0.2.0"))["README.md"].count("==0.2.0")


def test_default_workflows_and_package_are_one_pinned_commit() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", DEFAULT_WORKFLOWS_SHA)
    assert f"{PROJECT_REPO}@{DEFAULT_WORKFLOWS_SHA}" == DEFAULT_WORKFLOWS


class _Dist:
    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return self.direct_url if name == "direct_url.json" else None


def test_default_package_follows_the_installation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Dist(None))
    assert default_package() == (
        f"ilab-gitops[repo] @ git+https://github.com/{PROJECT_REPO}@{DEFAULT_WORKFLOWS_SHA}"
    )
    git_install = {
        "url": "https://github.com/fork/ilab-gitops",
        "vcs_info": {"vcs": "git", "commit_id": SHA},
    }
    monkeypatch.setattr(
        importlib.metadata, "distribution", lambda name: _Dist(json.dumps(git_install))
    )
    assert default_package() == f"ilab-gitops[repo] @ git+https://github.com/fork/ilab-gitops@{SHA}"
    assert plan(InitOptions())["README.md"].count(f"fork/ilab-gitops@{SHA}")


def test_default_workflows_sha_is_a_commit_of_this_repository() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    import git

    repo = git.Repo(ROOT, search_parent_directories=True)
    if repo.git.rev_parse("--is-shallow-repository") == "true":
        pytest.skip("shallow clone: older commits are not here (CI: fetch-depth 0)")
    assert repo.commit(DEFAULT_WORKFLOWS_SHA).hexsha == DEFAULT_WORKFLOWS_SHA


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (
            json.dumps(
                {
                    "url": "https://github.com/example/ilab-gitops",
                    "vcs_info": {"vcs": "git", "commit_id": SHA, "requested_revision": "main"},
                }
            ),
            f"ilab-gitops[repo] @ git+https://github.com/example/ilab-gitops@{SHA}",
        ),
        (json.dumps({"url": "file:///src", "dir_info": {"editable": True}}), None),
        (
            json.dumps({"url": "ssh://git@host/x", "vcs_info": {"vcs": "git", "commit_id": SHA}}),
            None,
        ),
        (json.dumps({"url": "https://h/x", "vcs_info": {"vcs": "git", "commit_id": "main"}}), None),
        ("not json", None),
        (None, None),
    ],
)
def test_package_is_derived_from_a_git_install(
    direct_url: str | None, expected: str | None
) -> None:
    assert package_from_direct_url(direct_url) == expected


def test_codeowners_gives_the_platform_folders_to_the_owners() -> None:
    text = plan(InitOptions(owners="@example/platform"))[".github/CODEOWNERS"]
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        ["/environments/", "@example/platform"],
        ["/.github/", "@example/platform"],
        ["/bootstrap/", "@example/platform"],
        ["/.ilab/", "@example/platform"],
        ["/rendered/", "@example/platform"],
    ]
    unset = plan(InitOptions())[".github/CODEOWNERS"]
    assert all(line.startswith("#") for line in unset.splitlines())
    assert "# /environments/ @ORG/TEAM" in unset


def test_readme_explains_branch_protection_and_every_workflow_input() -> None:
    files = plan(InitOptions(owners="@example/platform"))
    readme = files["README.md"]
    for phrase in (
        "require review from Code Owners",
        "require status checks to pass",
        "block force pushes",
        "The platform owners are @example/platform.",
    ):
        assert phrase in readme
    workflows = "".join(t for p, t in files.items() if p.startswith(".github/workflows/"))
    names = set(re.findall(r"\$\{\{\s*(?:vars|secrets)\.([A-Z0-9_]+)", workflows))
    assert names and all(f"`{name}`" in readme for name in names)


def test_readme_names_every_secret_the_spec_references() -> None:
    """Each secret reference field of PipelineRun appears, with the keys its model describes."""
    readme = plan(InitOptions())["README.md"]
    schema = json.loads(plan(InitOptions())[".ilab/schema/pipelinerun.schema.json"])
    refs: list[tuple[str, str]] = []
    for name, definition in schema["$defs"].items():
        for field in definition.get("properties", {}):
            if field.endswith(("SecretRef", "secretRef")):
                refs.append((name, field))
    assert len(refs) >= 7
    for field in {f for _, f in refs}:
        assert f".{field}`" in readme, field
    for name in ("sdg-object-store", "model-output-store", "judge-server"):
        assert f"create secret generic {name}" in readme
    for key in ("data_key", "access_key", "secret_key", "verify_tls", "api_token", "model_name"):
        assert f"--from-literal={key}=" in readme


def test_schema_lines_resolve_to_the_copied_schemas_and_the_example_validates(
    tmp_path: Path,
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    files = plan(InitOptions())
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    checked = 0
    for rel in (
        EXAMPLE_RUN,
        "environments/kind-dev.yaml",
        "examples/environments/multi-node-gpu.yaml",
    ):
        first = (tmp_path / rel).read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, first
        schema_path = ((tmp_path / rel).parent / match.group(1)).resolve()
        assert schema_path.is_relative_to(tmp_path.resolve())
        schema = json.loads(schema_path.read_text())
        assert schema == json.loads((ROOT / "spec" / "schema" / schema_path.name).read_text())
        # YAML 1.2, as editors read it (PyYAML's 1.1 takes 6e-6 for a string).
        data = parse_yaml((tmp_path / rel).read_bytes(), rel).data
        jsonschema.validate(data, schema)  # raises on a mismatch
        checked += 1
    assert checked == 3
    broken = parse_yaml((tmp_path / EXAMPLE_RUN).read_bytes(), EXAMPLE_RUN).data
    broken["spec"]["training"]["knowledge"]["epoch"] = 7
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            broken, json.loads((tmp_path / SCHEMA_DIR / "pipelinerun.schema.json").read_text())
        )


def test_editor_settings_map_runs_and_environments_to_existing_schemas(tmp_path: Path) -> None:
    files = plan(InitOptions())
    settings = json.loads(files[".vscode/settings.json"])["yaml.schemas"]
    assert set(settings) == {
        f"./{SCHEMA_DIR}/pipelinerun.schema.json",
        f"./{SCHEMA_DIR}/environment.schema.json",
    }
    for schema_path in settings:
        assert schema_path[2:] in files
    assert "runs/*.yaml" in settings[f"./{SCHEMA_DIR}/pipelinerun.schema.json"]
    assert "environments/*.yaml" in settings[f"./{SCHEMA_DIR}/environment.schema.json"]


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path, run_cli: Cli) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "README.md").write_text("mine\n")
    (target / "examples").mkdir()
    (target / "examples" / "example.yaml").write_text("mine too\n")
    result = run_cli("init", str(target), cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        f"ilab-gitops init: 2 file(s) already exist in {target}; nothing was written "
        "(use --force to overwrite them):\n  README.md\n  examples/example.yaml\n"
    )
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "README.md",
        "examples",
        "examples/example.yaml",
    ]
    forced = run_cli("init", str(target), "--force", cwd=tmp_path)
    assert forced.code == 0, forced.err
    assert (target / "README.md").read_text().startswith("# Training runs\n")


def test_a_file_in_the_way_blocks_even_with_force(tmp_path: Path, run_cli: Cli) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "examples").write_text("a file where a folder belongs\n")
    result = run_cli("init", str(target), "--force", cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith(f"ilab-gitops init: cannot create these paths in {target}:")
    assert sorted(p.name for p in target.iterdir()) == ["examples"]


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
    assert text.startswith(
        "# yaml-language-server: $schema=../.ilab/schema/pipelinerun.schema.json\n"
        "# An example run. Nothing applies this file"
    )


def test_operations_guide_has_the_same_retry_table() -> None:
    pattern = re.compile(r"^\| ([a-z0-9-]+|every step) \| `(spec\.[A-Za-z.]+)` \|$", re.M)
    readme = plan(InitOptions())["README.md"]
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert pattern.findall(guide) == pattern.findall(readme) != []


def test_readme_explains_every_status() -> None:
    readme = plan(InitOptions())["README.md"]
    documented = re.findall(r"^\| ([a-z]+) \| ", readme, re.M)
    assert set(typing.get_args(classify.Status)) <= set(documented)
