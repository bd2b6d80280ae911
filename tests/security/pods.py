"""Find the rendered objects, pod specs and containers in golden trees or compiled output.

Plain PyYAML only (no ilab_gitops import): `crd_pods.py` runs this under the scan venv.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

K8sObject = dict[str, Any]


def golden_trees(golden: Path = GOLDEN) -> list[Path]:
    """Rendered run trees: `tests/golden/<example>--<environment>/`."""
    return sorted(p for p in golden.iterdir() if p.is_dir() and "--" in p.name)


def tree_files(root: Path) -> dict[str, str]:
    """Every YAML file of a rendered tree, by path relative to `root`."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.yaml"))
    }


def documents(files: Mapping[str, str]) -> Iterator[tuple[str, K8sObject]]:
    """(`file#index`, object) for every YAML document of every file."""
    for path, text in sorted(files.items()):
        for index, doc in enumerate(yaml.load_all(text, Loader=_LOADER)):
            if doc is not None:
                yield f"{path}#{index}", doc


def golden_objects() -> list[tuple[str, K8sObject]]:
    """Every object of every golden run tree, labelled `<tree>/<file>#<index>`."""
    return [
        (f"{tree.name}/{where}", obj)
        for tree in golden_trees()
        for where, obj in documents(tree_files(tree))
    ]


def pod_specs(obj: Any, where: str = "") -> Iterator[tuple[str, K8sObject]]:
    """Every PodSpec inside an object (a mapping with a `containers` list), wherever it sits:
    Pod.spec, Job.spec.template.spec, PyTorchJob replica templates, future kinds alike."""
    if isinstance(obj, dict):
        # A TrainJob's podSpecOverrides patch the runtime's pods; they are not pod specs
        # (tests/unit/test_trainjob.py checks the merged pod).
        if isinstance(obj.get("containers"), list) and "targetJobs" not in obj:
            yield where, obj
            return
        for key, value in obj.items():
            yield from pod_specs(value, f"{where}.{key}" if where else str(key))
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            yield from pod_specs(item, f"{where}[{index}]")


def containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, K8sObject]]:
    """(`containers[name]`, container) for init, regular and ephemeral containers."""
    for field in CONTAINER_LISTS:
        for container in pod.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def all_pod_specs(objects: Iterable[tuple[str, K8sObject]]) -> list[tuple[str, K8sObject]]:
    return [
        (f"{where} {obj.get('kind')} {path}", pod)
        for where, obj in objects
        for path, pod in pod_specs(obj)
    ]
