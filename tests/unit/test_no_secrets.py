"""No secret value, token or password ever reaches a rendered file.

Specs cannot hold credentials (the validator rejects them), so the tests plant distinct marker
strings as the Secret names and keys of every Secret reference a run can make and follow them
into the output: they may appear only as the name or key of a Secret reference. No Secret
object is rendered, environment variables carry literal values only for an allowlist, and a
spec holding something credential-shaped is refused (exit 2) without echoing it or writing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.security.cli import run_main as run_cli
from tests.security.pods import all_pod_specs, containers, documents, golden_objects
from tests.security.specs import MARKERS, full_run, rendered_variants, write_runs

#: Environment variables that may carry a literal value (everything else: a Secret reference).
#: (ILAB_PROGRESS_TOKEN_DIR names a folder: manifests/progress.py.)
LITERAL_ENV = frozenset({"HOME", "ILAB_PARAMS", "ILAB_PROGRESS_TOKEN_DIR"})
#: Parents of a Secret name or key: env valueFrom, envFrom, params (`*SecretRef`), volumes.
REFERENCE_PARENTS = ("secretKeyRef", "secretRef", "SecretRef")
VARIANTS = list(rendered_variants())
VARIANT_OBJECTS = [
    (f"{label}/{where}", obj) for label, files in VARIANTS for where, obj in documents(files)
]
ALL_OBJECTS = golden_objects() + VARIANT_OBJECTS

Loc = tuple[str | int, ...]


def _strings(value: Any, path: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string (keys included) with its path; JSON held in strings is opened up too."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key, "<key>"), str(key)
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
    elif isinstance(value, str):
        try:
            inner = json.loads(value) if value.lstrip().startswith(("{", "[")) else value
        except ValueError:
            inner = value
        if inner is value:
            yield path, value
        else:
            yield from _strings(inner, (*path, "<json>"))


def _is_reference(path: Loc, text: str, marker: str) -> bool:
    """`text` is exactly the marker, as the name or key of a Secret reference."""
    if text != marker or len(path) < 2:
        return False
    parent, field = path[-2], path[-1]
    if parent == "secret" and field == "secretName":
        return True
    return (
        isinstance(parent, str) and parent.endswith(REFERENCE_PARENTS) and field in ("name", "key")
    )


def test_every_secret_reference_is_rendered() -> None:
    """Non-vacuous: each marker reaches the output of the variants that reference it."""
    seen = {
        marker
        for _, obj in VARIANT_OBJECTS
        for _, text in _strings(obj)
        for marker in MARKERS.values()
        if marker in text
    }
    assert seen == set(MARKERS.values())


def misplaced(files: dict[str, str]) -> list[str]:
    """Every place a marker appears other than as the name or key of a Secret reference."""
    found = [
        f"{where}: {'.'.join(map(str, path))} = {text[:80]!r}"
        for where, obj in documents(files)
        for path, text in _strings(obj)
        for marker in MARKERS.values()
        if marker in text and not _is_reference(path, text, marker)
    ]
    for path, text in files.items():  # outside the parsed YAML: comments, separators
        parsed = "".join(t for _, obj in documents({path: text}) for _, t in _strings(obj))
        found += [
            f"{path}: {m} outside the data"
            for m in MARKERS.values()
            if text.count(m) > parsed.count(m)
        ]
    return found


@pytest.mark.parametrize(("label", "files"), VARIANTS, ids=[label for label, _ in VARIANTS])
def test_secret_names_appear_only_as_references(label: str, files: dict[str, str]) -> None:
    assert misplaced(files) == []


def test_a_misplaced_secret_name_is_caught() -> None:
    _, files = VARIANTS[0]
    path = next(p for p in files if p.endswith("manifests.yaml"))
    marker = MARKERS["sdg"]
    leaked = {
        **files,
        path: files[path].replace("  labels:\n", f"  labels:\n    leak: {marker}\n", 1),
    }
    assert misplaced(leaked)
    commented = {**files, path: files[path] + f"# {marker}\n"}
    assert misplaced(commented)
    embedded = {**files, path: files[path].replace(f"name: {marker}", f"name: {marker}-x", 1)}
    assert misplaced(embedded)


def test_no_secret_object_is_rendered() -> None:
    kinds = {obj.get("kind") for _, obj in ALL_OBJECTS}
    assert "Secret" not in kinds
    assert {"ConfigMap", "PersistentVolumeClaim"} <= kinds
    assert not [where for where, obj in ALL_OBJECTS if "stringData" in obj]


def test_environment_variables_are_literal_only_for_the_allowlist() -> None:
    literal: list[str] = []
    references = 0
    for where, pod in all_pod_specs(ALL_OBJECTS):
        for name, container in containers(pod):
            for var in container.get("env") or []:
                if "value" in var and var["name"] not in LITERAL_ENV:
                    literal.append(f"{where} {name}: {var['name']}")
                elif "valueFrom" in var:
                    assert set(var["valueFrom"]) == {"secretKeyRef"}, (where, var)
                    references += 1
            for source in container.get("envFrom") or []:
                assert set(source) <= {"secretRef", "configMapRef", "prefix"}, (where, source)
    assert literal == []
    assert references > 0


# --------------------------------------------------------------------------- rejected input

FAKE = {
    "aws-key-in-prefix": (("spec", "output", "prefix"), "AKIAZQ7EXAMPLE00KEY1"),
    "password-in-url": (("spec", "taxonomy", "repoUrl"), "https://bot:zq-hunter2@github.com/a/b"),
    "github-token-in-branch": (
        ("spec", "evaluation", "final", "taxonomyBaseBranch"),
        "ghp_zq0123456789abcdefghijklmnopqrstuv",
    ),
    "hf-token-in-s3-prefix": (
        ("spec", "baseModel", "s3", "prefix"),
        "hf_zqABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
    ),
    "private-key-in-unknown-field": (
        ("spec", "password"),
        "-----BEGIN OPENSSH PRIVATE KEY-----zq",
    ),
    "api-key-as-key": (("spec", "sk-zq0123456789abcdefghijklmnopqrstuvwxyz"), "x"),
}


def _plant(path: Loc, value: str) -> dict[str, Any]:
    data = full_run("s3")
    node: Any = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("case", sorted(FAKE))
@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_credential_in_spec_is_refused_unechoed_and_unwritten(
    case: str, fmt: str, tmp_path: Path
) -> None:
    path, secret = FAKE[case]
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "run.yaml").write_text(yaml.safe_dump(_plant(path, secret)), encoding="utf-8")
    shutil.copytree(Path(__file__).resolve().parents[2] / "environments", tmp_path / "environments")
    out = tmp_path / "rendered"
    result = run_cli(["render", "runs", "--out", str(out), "--format", fmt], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "inline-credential" in result.stdout + result.stderr
    # The pasted value must not be copied into CI logs or annotations either.
    assert "zq" not in (result.stdout + result.stderr).replace("zq-", ""), result.stderr
    assert not out.exists()
    stream = run_cli(["render", "runs", "--out", "-", "--format", fmt], tmp_path)
    assert stream.returncode == 2
    assert secret not in stream.stdout and "kind:" not in stream.stdout


def test_credential_in_one_run_writes_nothing_for_the_others(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs", 3)
    shutil.copytree(Path(__file__).resolve().parents[2] / "environments", tmp_path / "environments")
    out = tmp_path / "rendered"
    assert run_cli(["render", "runs", "--out", str(out)], tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = _plant(("spec", "output", "prefix"), "AKIAZQ7EXAMPLE00KEY1")
    bad["metadata"]["name"] = "zq-run-0001"
    (tmp_path / "runs" / "zq-run-0001.yaml").write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert run_cli(["render", "runs", "--out", str(out)], tmp_path).returncode == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
