"""`ilab-gitops init`: the files of a new runs repo, planned in memory, then written.

Everything is computed first: templates, the reference environments, the example run
rendered by the compiler, the engines' bootstrap. Files are written only when none of them
exists yet (or `force`), each one atomically, so a refused or failed init leaves nothing behind
that the next attempt would trip over.

The reference environments have one source, the repository's `environments/`: a wheel carries
them as `ilab_gitops/templates/environments/` (hatch `force-include`), a source checkout reads
them in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ilab_gitops import __version__, yaml_emit
from ilab_gitops.manifests import compile_run
from ilab_gitops.render import INDEX_FILE, merge_tree, run_folder
from ilab_gitops.sources import LoadError, parse_yaml
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from ilab_gitops.validation import check_document, check_run_against_environment

TEMPLATES = resources.files("ilab_gitops") / "templates"
ENGINES = ("argocd", "flux")
DEFAULT_ENVIRONMENT = "kind-dev"
DEFAULT_WORKFLOWS = f"instructlab/ilab-gitops@v{__version__}"
DEFAULT_PACKAGE = f"ilab-gitops[repo]=={__version__}"
EXAMPLE_RUN = "runs/example.yaml"
RENDERED = "rendered"
#: Caller workflows written into the new repo, by template name.
WORKFLOWS = ("validate.yml", "pr-comment.yml", "render.yml", "results-sync.yml")

_PLACEHOLDER = re.compile(r"%%[A-Z_]+%%")
_WORKFLOWS_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[A-Za-z0-9_./-]+$")
_REPO_URL_RE = re.compile(r"^(https://|http://|ssh://|git@|file://)[^\s]+$")
_SOURCE_TREE_ENVIRONMENTS = Path(__file__).resolve().parents[3] / "environments"


class ScaffoldError(Exception):
    """Bad options or a broken installation; the message tells the user what to do."""


@dataclass(frozen=True)
class InitOptions:
    engines: tuple[str, ...] = ()
    repo_url: str | None = None
    environment: str = DEFAULT_ENVIRONMENT
    workflows: str = DEFAULT_WORKFLOWS  # owner/name@ref of the reusable workflows
    package: str = DEFAULT_PACKAGE  # what the workflows pip-install


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `%%KEY%%` placeholders; every placeholder must have a value."""
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    left = _PLACEHOLDER.search(text)
    if left:
        raise ScaffoldError(f"template placeholder {left.group(0)} has no value")
    return text


def environments_source() -> Traversable:
    """Where the reference environments are: in the wheel, else in the source checkout."""
    packaged = TEMPLATES / "environments"
    if packaged.is_dir():
        return packaged
    if _SOURCE_TREE_ENVIRONMENTS.is_dir():
        return _SOURCE_TREE_ENVIRONMENTS
    raise ScaffoldError(
        "the reference environments are missing from this installation of ilab-gitops "
        "(expected ilab_gitops/templates/environments/); reinstall it"
    )


def reference_environments() -> dict[str, str]:
    """File name -> text of every reference environment."""
    found = {
        item.name: item.read_text(encoding="utf-8")
        for item in environments_source().iterdir()
        if item.name.endswith((".yaml", ".yml"))
    }
    return dict(sorted(found.items()))


def _model(text: str, path: str) -> PipelineRun | Environment:
    try:
        document = parse_yaml(text.encode("utf-8"), path)
    except LoadError as err:
        raise ScaffoldError(f"bundled file does not parse: {err}") from None
    model, diagnostics = check_document(document)
    if model is None:
        raise ScaffoldError(f"bundled file is invalid: {diagnostics[0].as_text()}")
    return model


def _check_options(options: InitOptions, envs: Mapping[str, Environment]) -> Environment:
    unknown = sorted(set(options.engines) - set(ENGINES))
    if unknown:
        raise ScaffoldError(f"unknown engine {', '.join(unknown)} (choose from argocd, flux)")
    if options.environment not in envs:
        raise ScaffoldError(
            f'unknown environment "{options.environment}" (bundled: {", ".join(sorted(envs))})'
        )
    env = envs[options.environment]
    missing = [e for e in options.engines if e not in env.spec.engines]
    if missing:
        raise ScaffoldError(
            f'environment "{options.environment}" is not applied by {", ".join(missing)} '
            f"(its spec.engines: {', '.join(env.spec.engines)}); pick another --environment"
        )
    if options.engines and not options.repo_url:
        raise ScaffoldError(
            "--repo-url is needed to write the bootstrap of " + ", ".join(options.engines)
        )
    if options.repo_url is not None and not _REPO_URL_RE.match(options.repo_url):
        raise ScaffoldError(f'--repo-url "{options.repo_url}" is not a git URL')
    if not _WORKFLOWS_RE.match(options.workflows):
        raise ScaffoldError(f'--workflows "{options.workflows}" is not OWNER/NAME@REF')
    return env


def _bootstrap(engine: str, repo_url: str, env: Environment) -> str:
    from ilab_gitops.bootstrap import argocd_bootstrap, flux_bootstrap

    if engine == "argocd":
        head = (
            "# Argo CD, once per cluster. Server-side apply merges the health checks into the\n"
            "# existing argocd-cm instead of replacing it:\n"
            "#   kubectl apply --server-side --field-manager=ilab-gitops -f bootstrap/argocd.yaml\n"
        )
        objects = argocd_bootstrap(
            repo_url, namespace=env.spec.namespace, environment=env.metadata.name
        )
    else:
        flux = env.spec.flux
        head = (
            "# Flux, once per cluster:  kubectl apply -f bootstrap/flux.yaml\n"
            "# A private repository also needs spec.secretRef on the GitRepository.\n"
        )
        objects = flux_bootstrap(
            repo_url,
            rendered_path=flux.renderedPath,
            namespace=flux.namespace,
            source_name=flux.sourceName,
            environment=env.metadata.name,
        )
    return head + yaml_emit.dump_all(objects)


def _bootstrap_readme(engines: Iterable[str]) -> str:
    parts = {
        "argocd": "Argo CD: `kubectl apply --server-side --field-manager=ilab-gitops -f "
        "bootstrap/argocd.yaml` adds the health checks Argo CD needs to wait for training "
        "jobs, an AppProject limited to this repository and the kinds runs use, and an "
        "ApplicationSet with one Application per `rendered/<environment>/<run>/` of the "
        "environment the cluster serves. Follow a run with "
        "`argocd app get <run>`.",
        "flux": "Flux: `kubectl apply -f bootstrap/flux.yaml` adds a GitRepository for this "
        "repository and a Kustomization applying `rendered/<environment>/` (the environment "
        "the cluster serves), where each run has one "
        "Kustomization per step. Follow a run with "
        "`flux get kustomizations -n flux-system | grep <run>`.",
    }
    chosen = [parts[e] for e in engines]
    if not chosen:
        return (
            "No GitOps engine was chosen when this repository was created. Write the "
            "one-time cluster setup with `ilab-gitops bootstrap argocd --repo-url <url> "
            "--environment <name> > bootstrap/argocd.yaml` (or `bootstrap flux`) and apply "
            "it as its header says.\n"
        )
    return "\n\n".join(chosen) + "\n"


def plan(
    options: InitOptions, existing_rendered: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every file of the new repo, by path relative to its root."""
    env_texts = reference_environments()
    envs: dict[str, Environment] = {}
    for filename, text in env_texts.items():
        model = _model(text, f"environments/{filename}")
        if isinstance(model, Environment):
            envs[model.metadata.name] = model
    env = _check_options(options, envs)
    engines = tuple(dict.fromkeys(options.engines))
    example = fill(template("runs/example.yaml"), {"ENVIRONMENT": options.environment})
    run = _model(example, EXAMPLE_RUN)
    if not isinstance(run, PipelineRun):
        raise ScaffoldError(f"{EXAMPLE_RUN} is not a PipelineRun")
    problems = check_run_against_environment(parse_yaml(example.encode(), EXAMPLE_RUN), run, env)
    if problems:
        raise ScaffoldError(f"bundled example does not fit: {problems[0].as_text()}")
    owner_repo, ref = options.workflows.split("@", 1)
    values = {"WORKFLOWS_REPO": owner_repo, "WORKFLOWS_REF": ref, "PACKAGE": options.package}
    files: dict[str, str] = {
        "README.md": fill(template("README.md"), {"BOOTSTRAP": _bootstrap_readme(engines)}),
        ".gitattributes": template("gitattributes"),
        EXAMPLE_RUN: example,
    }
    files.update({f"environments/{name}": text for name, text in env_texts.items()})
    files.update(
        {
            f".github/workflows/{name}": fill(template(f"workflows/{name}"), values)
            for name in WORKFLOWS
        }
    )
    folder = run_folder(env.metadata.name, run.metadata.name)
    rendered = merge_tree(
        existing_rendered or {}, {folder: compile_run(run, env)}, environments=sorted(envs)
    )
    indexes = {INDEX_FILE, *(f"{name}/{INDEX_FILE}" for name in envs)}
    files.update(
        {
            f"{RENDERED}/{path}": text
            for path, text in rendered.items()
            if path.startswith(f"{folder}/") or path in indexes
        }
    )
    for engine in engines:
        assert options.repo_url is not None  # checked by _check_options
        files[f"bootstrap/{engine}.yaml"] = _bootstrap(engine, options.repo_url, env)
    return dict(sorted(files.items()))


def conflicts(root: Path, paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(files that exist, paths that cannot be created because something is in the way)."""
    existing: list[str] = []
    blocked: list[str] = []
    for rel in paths:
        target = root / rel
        in_the_way = [
            p
            for p in target.parents
            if p != root and root in p.parents and (p.exists() or p.is_symlink()) and not p.is_dir()
        ]
        if in_the_way or target.is_dir():
            blocked.append(rel)
        elif target.exists() or target.is_symlink():
            existing.append(rel)
    return sorted(existing), sorted(blocked)


def write(root: Path, files: Mapping[str, str]) -> None:
    """Write each file atomically (temporary sibling, then rename)."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
