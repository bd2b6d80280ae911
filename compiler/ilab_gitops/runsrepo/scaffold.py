"""`ilab-gitops init`: the files of a new runs repo, planned in memory, then written.

Everything is computed first: templates, the environment profile, the engines' bootstrap,
the JSON Schemas for editors. Files are written only when none of them exists yet (or
`force`), each one atomically, so a refused or failed init leaves nothing behind that the next
attempt would trip over.

A fresh runs repo starts nothing on a cluster: the example run lives in `examples/`, where
neither `render` nor the engines look, and nothing is pre-rendered. `environments/` holds only
the chosen profile; the other reference profiles go to `examples/environments/`.
`.github/CODEOWNERS` gives `environments/`, `.github/` and `bootstrap/` to the platform owners.

Installs are pinned: the callers use the reusable workflows at a commit SHA
(`DEFAULT_WORKFLOWS_SHA`, set for each release) and the tool from a pinned source.

The reference environments have one source, the repository's `environments/`: a wheel
carries them as `ilab_gitops/runsrepo/templates/environments/` (hatch `force-include`), a
source checkout reads them in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ilab_gitops.emit import yaml_emit
from ilab_gitops.emit.render import merge_tree
from ilab_gitops.load.sources import LoadError, parse_yaml
from ilab_gitops.load.validation import check_document, check_run_against_environment
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from ilab_gitops.spec.schema import json_schemas

TEMPLATES = resources.files("ilab_gitops.runsrepo") / "templates"
ENGINES = ("argocd", "flux")
DEFAULT_ENVIRONMENT = "kind-dev"
#: GitHub repository of this project: the reusable workflows and the git install source.
PROJECT_REPO = "instructlab/ilab-gitops"
#: Commit of PROJECT_REPO whose reusable workflows (and package) new runs repos pin by default.
#: One constant, set for each release to a commit that exists in PROJECT_REPO.
DEFAULT_WORKFLOWS_SHA = "890179a937e5a55e04ade2ba3e5139c9937671e1"
DEFAULT_WORKFLOWS = f"{PROJECT_REPO}@{DEFAULT_WORKFLOWS_SHA}"
EXAMPLE_RUN = "examples/example.yaml"
EXAMPLE_ENVIRONMENTS = "examples/environments"
SCHEMA_DIR = ".ilab/schema"
CODEOWNERS = ".github/CODEOWNERS"
#: Folders the platform owners own in a runs repo (CODEOWNERS; `doctor` checks the first two).
OWNED_PATHS = ("environments/", ".github/", "bootstrap/", ".ilab/", "rendered/")
#: Caller workflows written into the new repo, by template name.
WORKFLOWS = ("validate.yml", "pr-comment.yml", "render.yml", "results-sync.yml")
#: The JSON Schema each kind of file is checked against in editors.
SCHEMA_OF = {"PipelineRun": "pipelinerun.schema.json", "Environment": "environment.schema.json"}

_PLACEHOLDER = re.compile(r"%%[A-Z_]+%%")
_SHA = r"[0-9a-f]{40}"
_WORKFLOWS_RE = re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@([A-Za-z0-9_./-]+)$")
_SHA_RE = re.compile(f"^{_SHA}$")
_PACKAGE_RE = re.compile(
    r"^ilab-gitops(\[[a-z][a-z,-]*\])?"
    rf"(==[0-9][0-9A-Za-z.+!-]*| @ git\+https://[A-Za-z0-9._~/:-]+@{_SHA})$"
)
_OWNER_RE = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?$")
_REPO_URL_RE = re.compile(r"^(https://|http://|ssh://|git@|file://)[^\s]+$")
_SOURCE_TREE_ENVIRONMENTS = Path(__file__).resolve().parents[3] / "environments"


def package_from_direct_url(text: str | None) -> str | None:
    """`ilab-gitops[repo] @ git+URL@COMMIT` from a PEP 610 direct_url.json of a git install."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    vcs = data.get("vcs_info") if isinstance(data, dict) else None
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git" or not isinstance(url, str):
        return None
    commit = vcs.get("commit_id")
    if not isinstance(commit, str) or not _SHA_RE.match(commit) or not url.startswith("https://"):
        return None
    candidate = f"ilab-gitops[repo] @ git+{url}@{commit}"
    return candidate if _PACKAGE_RE.match(candidate) else None


def default_package() -> str:
    """What the runs repo README tells people to install when `--package` is not given.

    Derived from the installed distribution: a git install (PEP 610 `direct_url.json`) pins
    its own commit; otherwise the project at `DEFAULT_WORKFLOWS_SHA`, the commit of this
    release (no package index carries ilab-gitops yet).
    """
    try:
        direct = metadata.distribution("ilab-gitops").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    from_git = package_from_direct_url(direct)
    if from_git is not None:
        return from_git
    return f"ilab-gitops[repo] @ git+https://github.com/{PROJECT_REPO}@{DEFAULT_WORKFLOWS_SHA}"


class ScaffoldError(Exception):
    """Bad options or a broken installation; the message tells the user what to do."""


@dataclass(frozen=True)
class InitOptions:
    engines: tuple[str, ...] = ()
    repo_url: str | None = None
    environment: str = DEFAULT_ENVIRONMENT
    workflows: str = DEFAULT_WORKFLOWS  # owner/name@sha of the reusable workflows
    package: str = field(default_factory=default_package)  # the README's install line
    owners: str | None = None  # @org/team owning environments/, .github/, bootstrap/


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
        "(expected ilab_gitops/runsrepo/templates/environments/); reinstall it"
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
    match = _WORKFLOWS_RE.match(options.workflows)
    if not match:
        raise ScaffoldError(f'--workflows "{options.workflows}" is not OWNER/NAME@SHA')
    if not _SHA_RE.match(match.group(2)):
        raise ScaffoldError(
            f'--workflows "{options.workflows}": "{match.group(2)}" is a tag or branch, which '
            "can be moved, so it does not pin the workflows; give the full 40-character "
            "commit SHA"
        )
    if not _PACKAGE_RE.match(options.package):
        raise ScaffoldError(
            f'--package "{options.package}" is not a pinned install source; give '
            '"ilab-gitops[repo]==VERSION" or '
            '"ilab-gitops[repo] @ git+https://HOST/OWNER/NAME@<40-character commit SHA>"'
        )
    if options.owners is not None and not _OWNER_RE.match(options.owners):
        raise ScaffoldError(
            f'--owners "{options.owners}" is not a GitHub team or user (@org/team or @user)'
        )
    return env


def _bootstrap(engine: str, repo_url: str, env: Environment) -> str:
    from ilab_gitops.engines.bootstrap import argocd_bootstrap, flux_bootstrap

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


def schema_line(kind: str, path: str) -> str:
    """The yaml-language-server modeline of a file at `path`, pointing at the copied schema."""
    up = "../" * path.count("/")
    return f"# yaml-language-server: $schema={up}{SCHEMA_DIR}/{SCHEMA_OF[kind]}\n"


def codeowners(owners: str | None) -> str:
    """`.github/CODEOWNERS`: the platform owners' folders (commented out without a team)."""
    head = (
        "# Code owners. With branch protection requiring a review from code owners (README.md,\n"
        '# "Protect main"), a pull request touching these paths needs the platform owners\'\n'
        "# approval. Runs (runs/) need any maintainer's review; rendered/ is written by the\n"
        "# render workflow only, so a pull request touching it is suspicious.\n"
    )
    if owners is None:
        head += (
            "# No owners team was given to `ilab-gitops init --owners @org/team`: replace\n"
            "# @ORG/TEAM below and remove the leading '# ' (`ilab-gitops doctor` reports it).\n"
        )
    prefix = "# " if owners is None else ""
    who = owners or "@ORG/TEAM"
    return head + "".join(f"{prefix}/{path} {who}\n" for path in OWNED_PATHS)


def vscode_settings() -> str:
    """`.vscode/settings.json`: the YAML extension checks runs and environments as you type."""
    schemas = {
        f"./{SCHEMA_DIR}/{SCHEMA_OF['PipelineRun']}": ["runs/*.yaml", "runs/*.yml", EXAMPLE_RUN],
        f"./{SCHEMA_DIR}/{SCHEMA_OF['Environment']}": [
            "environments/*.yaml",
            "environments/*.yml",
            f"{EXAMPLE_ENVIRONMENTS}/*.yaml",
        ],
    }
    return json.dumps({"yaml.schemas": schemas}, indent=2, sort_keys=True) + "\n"


def plan(options: InitOptions) -> dict[str, str]:
    """Every file of the new repo, by path relative to its root."""
    env_texts = reference_environments()
    envs: dict[str, Environment] = {}
    env_files: dict[str, str] = {}
    for filename, text in env_texts.items():
        model = _model(text, f"environments/{filename}")
        if isinstance(model, Environment):
            envs[model.metadata.name] = model
            env_files[model.metadata.name] = filename
    env = _check_options(options, envs)
    engines = tuple(dict.fromkeys(options.engines))
    example = schema_line("PipelineRun", EXAMPLE_RUN) + fill(
        template("runs/example.yaml"), {"ENVIRONMENT": options.environment}
    )
    run = _model(example, EXAMPLE_RUN)
    if not isinstance(run, PipelineRun):
        raise ScaffoldError(f"{EXAMPLE_RUN} is not a PipelineRun")
    problems = check_run_against_environment(parse_yaml(example.encode(), EXAMPLE_RUN), run, env)
    if problems:
        raise ScaffoldError(f"bundled example does not fit: {problems[0].as_text()}")
    owner_repo, ref = options.workflows.split("@", 1)
    values = {"WORKFLOWS_REPO": owner_repo, "WORKFLOWS_REF": ref, "PACKAGE": options.package}
    readme_values = {
        **values,
        "BOOTSTRAP": _bootstrap_readme(engines),
        "ENVIRONMENT": options.environment,
        "NAMESPACE": env.spec.namespace,
        "OWNERS": options.owners or "@ORG/TEAM (not set yet: see `.github/CODEOWNERS`)",
        "EXAMPLE_RUN": EXAMPLE_RUN,
    }
    files: dict[str, str] = {
        "README.md": fill(template("README.md"), readme_values),
        "runs/README.md": template("runs/README.md"),
        ".gitattributes": template("gitattributes"),
        CODEOWNERS: codeowners(options.owners),
        ".vscode/settings.json": vscode_settings(),
        EXAMPLE_RUN: example,
    }
    schemas = json_schemas()
    files.update({f"{SCHEMA_DIR}/{name}": schemas[name] for name in SCHEMA_OF.values()})
    for name, filename in env_files.items():
        where = "environments" if name == options.environment else EXAMPLE_ENVIRONMENTS
        path = f"{where}/{filename}"
        files[path] = schema_line("Environment", path) + env_texts[filename]
    files.update(
        {
            f".github/workflows/{name}": fill(template(f"workflows/{name}"), values)
            for name in WORKFLOWS
        }
    )
    # No run is pre-rendered (nothing starts on a cluster after init); the engines' entry
    # points, rendered/kustomization.yaml and rendered/<environment>/kustomization.yaml, exist.
    rendered = merge_tree({}, {}, environments=[options.environment])
    files.update({f"rendered/{path}": text for path, text in rendered.items()})
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
