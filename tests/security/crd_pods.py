"""Copy the golden run trees for a scan, adding each custom resource's pods as plain Pods.

checkov's Kubernetes checks know built-in kinds only: a PyTorchJob (the training step, the
pod with the most GPUs and the widest access) would not be scanned at all. Each pod template
found inside a custom resource is written beside it as `kind: Pod` with the template's labels
and spec, so the same checks judge it.

Trees whose environment allows tag images (development only) go to DEST/development/, the
rest to DEST/released/, so the image-digest check can be waived for the former alone.

Usage:  python -m tests.security.crd_pods DEST      (from the repository root; PyYAML only)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.security.pods import ROOT, documents, golden_trees, pod_specs, tree_files

BUILT_IN_GROUPS = ("v1", "batch/", "apps/")
POD_FILE = "crd-pods.yaml"
#: Scan groups: trees for released environments, and for development ones (tag images).
GROUPS = ("released", "development")


def crd_pods(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Pods standing in for the pod templates of a custom resource (none for built-ins)."""
    if str(obj.get("apiVersion", "")).startswith(BUILT_IN_GROUPS):
        return []
    meta = obj.get("metadata") or {}
    pods = []
    for where, spec in pod_specs(obj.get("spec") or {}, "spec"):
        template = _parent_template(obj, where)
        role = where.split(".")[-3].lower() if where.count(".") >= 2 else "pod"
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{meta.get('name')}-{role}",
                    "namespace": meta.get("namespace"),
                    "labels": (template.get("metadata") or {}).get("labels") or {},
                    "annotations": {"ilab-gitops/scanned-from": f"{obj.get('kind')} {where}"},
                },
                "spec": spec,
            }
        )
    return pods


def _parent_template(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """The `template` mapping holding the pod spec at `where` (`...template.spec`)."""
    node: Any = obj
    for part in where.split(".")[:-1]:
        node = node[part]
    return node if isinstance(node, dict) else {}


def development_only(tree: Path) -> bool:
    """The tree's environment opts into tag images (`allowTagImages: true`, development)."""
    environment = ROOT / "environments" / f"{tree.name.split('--', 1)[1]}.yaml"
    data = yaml.safe_load(environment.read_text(encoding="utf-8")) if environment.is_file() else {}
    return bool((data or {}).get("spec", {}).get("allowTagImages"))


def prepare(dest: Path) -> int:
    """Copy every golden run tree into `dest/released/` or `dest/development/`, with a
    crd-pods.yaml per step folder."""
    if dest.exists():
        shutil.rmtree(dest)
    for group in GROUPS:
        (dest / group).mkdir(parents=True)
    added = 0
    for tree in golden_trees():
        copy = dest / GROUPS[development_only(tree)] / tree.name
        shutil.copytree(tree, copy)
        for path, _ in tree_files(tree).items():
            pods = [
                pod
                for _, obj in documents({path: (tree / path).read_text(encoding="utf-8")})
                for pod in crd_pods(obj)
            ]
            if pods:
                target = copy / Path(path).parent / POD_FILE
                target.write_text(yaml.safe_dump_all(pods, sort_keys=True), encoding="utf-8")
                added += len(pods)
    return added


if __name__ == "__main__":
    count = prepare(Path(sys.argv[1]))
    print(f"{count} pod template(s) of custom resources added as Pods", file=sys.stderr)
