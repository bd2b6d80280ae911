"""Manifests -> files: a deterministic tree of YAML text, one folder per step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ilab_gitops import yaml_emit
from ilab_gitops.manifests.model import Manifests

FLUX_FOLDER = "flux"
INDEX_FILE = "kustomization.yaml"


def _kustomization(resources: Iterable[str]) -> str:
    return yaml_emit.dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(resources),
        }
    )


def render_run(manifests: Manifests) -> dict[str, str]:
    """Files of one run, by path relative to `rendered/<run>/`."""
    files: dict[str, str] = {}
    for step in manifests.steps:
        for obj in step.objects:
            files[f"{step.folder}/{obj['kind'].lower()}.yaml"] = yaml_emit.dump(obj)
    if manifests.flux:
        names = []
        for step, obj in zip(manifests.steps, manifests.flux, strict=True):
            names.append(f"{step.folder}.yaml")
            files[f"{FLUX_FOLDER}/{step.folder}.yaml"] = yaml_emit.dump(obj)
        files[f"{FLUX_FOLDER}/{INDEX_FILE}"] = _kustomization(names)
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
    files: dict[str, str] = {}
    flux_runs = []
    for run, manifests in sorted(all_manifests.items()):
        for path, text in render_run(manifests).items():
            files[f"{run}/{path}"] = text
        if manifests.flux:
            flux_runs.append(run)
    if flux_runs:
        files[INDEX_FILE] = flux_index(flux_runs)
    return dict(sorted(files.items()))


def merge_tree(
    existing: Mapping[str, str],
    rendered: Mapping[str, Manifests],
    *,
    prune: bool = False,
) -> dict[str, str]:
    """The whole `rendered/` tree after re-rendering `rendered` into `existing`.

    Runs not being rendered keep their files unless `prune` drops them; the Flux index is
    rebuilt from the runs that end up with a `flux/` folder.
    """
    files = {
        path: text
        for path, text in existing.items()
        if "/" in path and path.split("/", 1)[0] not in rendered and not prune
    }
    files.update(render_tree(rendered))
    files.pop(INDEX_FILE, None)
    flux_runs = sorted({p.split("/", 1)[0] for p in files if p.split("/")[1:2] == [FLUX_FOLDER]})
    if flux_runs:
        files[INDEX_FILE] = flux_index(flux_runs)
    return dict(sorted(files.items()))
