"""Manifests -> files: a deterministic tree of YAML text, one folder per step."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ilab_gitops.emit import yaml_emit
from ilab_gitops.manifests.model import Manifests

FLUX_FOLDER = "flux"
INDEX_FILE = "kustomization.yaml"
STEP_FILE = "manifests.yaml"
FLUX_FILE = "kustomizations.yaml"


def _kustomization(resources: Iterable[str]) -> str:
    return yaml_emit.dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(resources),
        }
    )


def render_run(manifests: Manifests) -> dict[str, str]:
    """Files of one run, by path relative to `rendered/<run>/`.

    One multi-document file per step keeps the tree small (file count dominates write time
    for large repos) while each step still has a folder of its own for Flux to point at.
    """
    files: dict[str, str] = {}
    for step in manifests.steps:
        files[f"{step.folder}/{STEP_FILE}"] = yaml_emit.dump_all(step.objects)
    if manifests.flux:
        files[f"{FLUX_FOLDER}/{FLUX_FILE}"] = yaml_emit.dump_all(manifests.flux)
        files[f"{FLUX_FOLDER}/{INDEX_FILE}"] = _kustomization([FLUX_FILE])
    return dict(sorted(files.items()))


def iter_stream(all_manifests: Iterable[Manifests]) -> Iterator[str]:
    """All objects of the given runs as one multi-document YAML stream, a run at a time (the
    concatenation is one stream), so that `render --out -` holds one run's text."""
    for manifests in all_manifests:
        yield yaml_emit.dump_all([*manifests.objects(), *manifests.flux])


def run_folder(environment: str, run: str) -> str:
    """Where a run's files go inside `rendered/`: one folder per environment, so a cluster's
    engine, pointed at `rendered/<environment>/`, sees only the runs it serves."""
    return f"{environment}/{run}"


def flux_index(runs_with_flux: Iterable[str]) -> str:
    """`rendered/<environment>/kustomization.yaml`: what that cluster's Flux parent applies."""
    return _kustomization(f"{run}/{FLUX_FOLDER}" for run in runs_with_flux)


def merge_tree(
    existing: Mapping[str, str],
    rendered: Mapping[str, Manifests],
    *,
    environments: Iterable[str] = (),
    prune: bool = False,
) -> dict[str, str]:
    """The whole `rendered/` tree after re-rendering `rendered` (keyed by `run_folder`)."""
    runs = {folder: render_run(manifests) for folder, manifests in rendered.items()}
    merged = merge_rendered(existing, runs, environments=environments, prune=prune)
    return {path: text for path, text in merged.items() if isinstance(text, str)}


def owner_folder(path: str) -> str:
    """The run folder (`<environment>/<run>`) a path below `rendered/` belongs to, or ""."""
    parts = path.split("/", 2)
    return f"{parts[0]}/{parts[1]}" if len(parts) == 3 else ""


def merge_rendered(
    existing: Mapping[str, str | bytes],
    runs: Mapping[str, Mapping[str, str]],
    *,
    environments: Iterable[str] = (),
    prune: bool = False,
) -> dict[str, str | bytes]:
    """The whole `rendered/` tree after putting each run's files (from `render_run`) in.

    `runs` is keyed by `run_folder`. Without `prune`, files of other run folders keep their
    content (bytes as found); with it, the tree is exactly what the given runs produce.
    Indexes are always written, even empty: `kustomization.yaml` in each environment's
    folder (every name in `environments` and every environment with a run) lists its runs'
    `flux/` folders, and the root one lists nothing, so that a Flux parent pointed at
    `rendered/` itself applies no run instead of every YAML file below, unordered.
    """
    indexes = set(environments) | {folder.split("/", 1)[0] for folder in runs}
    files: dict[str, str | bytes] = {}
    if not prune:
        for path, text in existing.items():
            folder = owner_folder(path)
            if folder in runs or path == INDEX_FILE:
                continue
            if path.endswith(f"/{INDEX_FILE}") and path.count("/") == 1:
                indexes.add(path.split("/", 1)[0])
                continue
            files[path] = text
    for folder, run_files in runs.items():
        for path, text in run_files.items():
            files[f"{folder}/{path}"] = text
    with_flux: dict[str, set[str]] = {env: set() for env in indexes}
    for path in files:
        parts = path.split("/")
        if len(parts) > 3 and parts[2] == FLUX_FOLDER and parts[0] in with_flux:
            with_flux[parts[0]].add(parts[1])
    for env, flux_runs in with_flux.items():
        files[f"{env}/{INDEX_FILE}"] = flux_index(sorted(flux_runs))
    files[INDEX_FILE] = _kustomization([])
    return dict(sorted(files.items()))
