"""`ilab-gitops doctor`: a runs repo's configuration checked offline, one line per problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ilab_gitops.runsrepo.doctor import doctor
from ilab_gitops.runsrepo.scaffold import (
    DEFAULT_WORKFLOWS_SHA,
    EXAMPLE_RUN,
    InitOptions,
    plan,
    write,
)
from tests.unit.repo.conftest import Cli

URL = "https://github.com/example/runs.git"
OWNERS = "@example/platform"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A runs repo as `init` writes it with owners and both engines' bootstrap."""
    root = tmp_path / "runs-repo"
    options = InitOptions(engines=("argocd", "flux"), repo_url=URL, owners=OWNERS)
    write(root, plan(options))
    return root


def lines(root: Path) -> list[str]:
    return [p.as_text() for p in doctor(root)]


def test_a_fresh_scaffold_with_owners_is_clean(repo: Path, run_cli: Cli) -> None:
    assert lines(repo) == []
    result = run_cli("doctor", str(repo), cwd=repo.parent)
    assert (result.code, result.err) == (0, f"ilab-gitops doctor: {repo}: 5 checks passed\n")


def test_without_owners_codeowners_is_reported(tmp_path: Path, run_cli: Cli) -> None:
    root = tmp_path / "r"
    write(root, plan(InitOptions()))
    assert lines(root) == [
        ".github/CODEOWNERS: gives .github/ to nobody; add `/.github/ @org/team` "
        "(the platform owners)",
        ".github/CODEOWNERS: gives environments/ to nobody; add `/environments/ @org/team` "
        "(the platform owners)",
    ]
    result = run_cli("doctor", str(root), cwd=tmp_path)
    assert result.code == 2
    assert result.err.endswith("ilab-gitops doctor: 2 problem(s)\n")
    (root / ".github" / "CODEOWNERS").unlink()
    assert lines(root) == [
        ".github/CODEOWNERS: missing; `ilab-gitops init --owners @org/team` writes one"
    ]


def test_a_later_rule_without_owner_unowns_the_folder(repo: Path) -> None:
    with (repo / ".github" / "CODEOWNERS").open("a") as handle:
        handle.write("/environments/\n")
    assert lines(repo) == [
        ".github/CODEOWNERS: gives environments/ to nobody; add `/environments/ @org/team` "
        "(the platform owners)"
    ]


def test_unpinned_workflows_and_installs(repo: Path) -> None:
    path = repo / ".github" / "workflows" / "validate.yml"
    text = path.read_text()
    assert f"@{DEFAULT_WORKFLOWS_SHA}" in text
    text = text.replace(f"ilab-validate.yml@{DEFAULT_WORKFLOWS_SHA}", "ilab-validate.yml@v1")
    text = re.sub(r'ilab-ref: "[^"]*"', 'ilab-ref: "main"', text)
    text += "      - uses: actions/checkout@v4\n"
    path.write_text(text)
    (repo / ".github" / "workflows" / "render.yml").unlink()
    found = lines(repo)
    assert ".github/workflows/render.yml: missing (or not a regular file); " in found[0]
    assert found[1:] == [
        '.github/workflows/validate.yml: installs ilab-gitops at "main", which is not pinned; '
        "use the full 40-character commit SHA (the same as the uses: lines)",
        '.github/workflows/validate.yml: uses "actions/checkout@v4" at v4, which is not '
        "pinned; a tag or branch can be moved, so use the full 40-character commit SHA",
        '.github/workflows/validate.yml: uses "instructlab/ilab-gitops/.github/workflows/'
        'ilab-validate.yml@v1" at v1, which is not pinned; a tag or branch can be moved, so '
        "use the full 40-character commit SHA",
    ]


def test_undocumented_variables_and_secrets(repo: Path) -> None:
    path = repo / ".github" / "workflows" / "results-sync.yml"
    path.write_text(
        path.read_text()
        + "# region: ${{ vars.ILAB_RESULTS_S3_REGION }} ${{ secrets.GITHUB_TOKEN }}\n"
    )
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("`ILAB_TAXONOMY_TOKEN`", "the token"))
    assert lines(repo) == [
        ".github/workflows/results-sync.yml: uses the secret ILAB_TAXONOMY_TOKEN, which "
        'README.md does not document; add it to the table under "GitHub: workflow variables, '
        'secrets and tokens"',
        ".github/workflows/results-sync.yml: uses the variable ILAB_RESULTS_S3_REGION, which "
        'README.md does not document; add it to the table under "GitHub: workflow variables, '
        'secrets and tokens"',
    ]


def test_environments_invalid_or_inconsistent_with_the_bootstrap(repo: Path) -> None:
    env = repo / "environments" / "kind-dev.yaml"
    env.write_text(env.read_text().replace("engines: [argocd, flux]", "engines: [flux]"))
    assert lines(repo) == ["bootstrap/argocd.yaml: no environment lists argocd in spec.engines"]
    env.write_text(env.read_text().replace("engines: [flux]", "engines: [argocd, flux]"))
    env.write_text(env.read_text().replace("namespace: ilab-dev", "namespace: ilab-other"))
    assert lines(repo) == [
        'bootstrap/argocd.yaml: targets namespace "ilab-dev", which no argocd environment '
        "uses (theirs: ilab-other); write it again with `ilab-gitops bootstrap argocd "
        "--environment NAME`"
    ]
    env.write_text(env.read_text().replace("namespace: ilab-other", "namespace: kube-system"))
    line = env.read_text().splitlines().index("  namespace: kube-system") + 1
    assert lines(repo) == [  # an invalid profile is reported alone, not judged against bootstrap
        f'environments/kind-dev.yaml: {line}:14: system-namespace: "kube-system" is a '
        "namespace of Kubernetes or a cluster add-on; runs applied there sit beside its service "
        "accounts and secrets. Give the runs a namespace of their own, or opt in with "
        "allowSystemNamespace: true"
    ]


def test_flux_bootstrap_in_another_namespace(repo: Path) -> None:
    path = repo / "bootstrap" / "flux.yaml"
    path.write_text(path.read_text().replace("namespace: flux-system", "namespace: gitops"))
    assert lines(repo)[0] == (
        'bootstrap/flux.yaml: its Kustomization is in namespace "gitops", which no flux '
        "environment uses (spec.flux.namespace: flux-system)"
    )


def test_the_example_copied_into_runs_is_live(repo: Path) -> None:
    (repo / "runs" / "example.yaml").write_text((repo / EXAMPLE_RUN).read_text())
    renamed = (repo / EXAMPLE_RUN).read_text().replace("name: granite-example", "name: mine")
    (repo / "runs" / "mine.yaml").write_text(renamed)
    (repo / "runs" / "broken.yaml").write_text(  # aliases, duplicate keys: left to validate
        "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n" * 3
    )
    assert lines(repo) == [
        "runs/example.yaml: is the scaffold's example run (granite-example): merged, it starts "
        "on the cluster; give it its own name and settings, or delete it"
    ]


def test_not_a_directory(tmp_path: Path, run_cli: Cli) -> None:
    result = run_cli("doctor", str(tmp_path / "nope"), cwd=tmp_path)
    assert (result.code, result.err) == (
        2,
        f"ilab-gitops doctor: {tmp_path / 'nope'}: not a directory\n",
    )
