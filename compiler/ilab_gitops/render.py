"""Manifests -> files: a deterministic tree of YAML text, one folder per step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ilab_gitops import yaml_emit
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


def render_stream(all_manifests: Iterable[Manifests]) -> str:
    """All objects of the given runs as one multi-document YAML stream."""
    docs = []
    for manifests in all_manifests:
        docs.extend(manifests.objects())
        docs.extend(manifests.flux)
    return yaml_emit.dump_all(docs)


def flux_index(runs_with_flux: Iterable[str]) -> str:
    """`rendered/kustomization.yaml`: what the Flux parent Kustomization applies."""
    return _kustomization(f"{run}/{FLUX_FOLDER}" for run in runs_with_flux)


def render_tree(all_manifests: Mapping[str, Manifests]) -> dict[str, str]:
    """Every file under `rendered/`, for the given runs (keyed by run name)."""
    return merge_rendered({}, {run: render_run(m) for run, m in all_manifests.items()})


def merge_tree(
    existing: Mapping[str, str],
    rendered: Mapping[str, Manifests],
    *,
    prune: bool = False,
) -> dict[str, str]:
    """The whole `rendered/` tree after re-rendering `rendered` into `existing`."""
    runs = {run: render_run(manifests) for run, manifests in rendered.items()}
    return merge_rendered(existing, runs, prune=prune)


def merge_rendered(
    existing: Mapping[str, str],
    runs: Mapping[str, Mapping[str, str]],
    *,
    prune: bool = False,
) -> dict[str, str]:
    """The whole `rendered/` tree after putting each run's files (from `render_run`) in.

    Runs not given keep their files unless `prune` drops them. `kustomization.yaml` at the
    root is always written, even empty: without it the Flux parent Kustomization would apply
    every YAML file below, unordered.
    """
    files = {
        path: text
        for path, text in existing.items()
        if "/" in path and path.split("/", 1)[0] not in runs and not prune
    }
    for run, run_files in runs.items():
        for path, text in run_files.items():
            files[f"{run}/{path}"] = text
    flux_runs = sorted({p.split("/", 1)[0] for p in files if p.split("/")[1:2] == [FLUX_FOLDER]})
    files[INDEX_FILE] = flux_index(flux_runs)
    return dict(sorted(files.items()))
