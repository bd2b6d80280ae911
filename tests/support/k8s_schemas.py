"""Validate Kubernetes objects against upstream schemas, as the API server would.

Two validators, both cached per kind and version:

- `builtin_errors`: built-in kinds (Job, ConfigMap, PersistentVolumeClaim, ...) against the
  OpenAPI schemas bundled with `kubernetes-validate`, in its strict flavour (unknown fields are
  errors, as with `kubectl apply --validate=strict`).
- `crd_errors`: custom resources against the CRDs vendored in `tests/data/upstream/`. The
  CRD's structural OpenAPI v3 schema is translated into JSON Schema 2020-12 with the API
  server's rules: unknown fields are rejected unless `x-kubernetes-preserve-unknown-fields`
  is set, `x-kubernetes-int-or-string` accepts an integer or a string, `nullable` admits null,
  `x-kubernetes-embedded-resource` admits apiVersion/kind/metadata, `x-kubernetes-list-type`
  `set`/`map` lists may not hold duplicates, and the top-level `metadata` is checked against
  the real ObjectMeta schema.

Not checked (no JSON Schema equivalent): CEL rules in `x-kubernetes-validations` and the
`format` of strings. A null in a field that is not `nullable` is reported although the API
server would silently drop it: a GitOps tool would then see a permanent diff.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

#: Upstream schemas and fixtures vendored into the repo (see tests/data/upstream/README.md).
UPSTREAM: Path = Path(__file__).resolve().parents[1] / "data" / "upstream"

_K8S_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META_REF = f"{_K8S_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_MAX_MESSAGE = 400

#: The C loader reads the multi-megabyte CRDs an order of magnitude faster, where built.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Schema = dict[str, Any]
GVK = tuple[str, str, str]


def upstream_schemas() -> Path:
    """The vendored upstream schemas; a missing copy is a broken checkout, never a skip."""
    schemas = UPSTREAM / "schemas"
    if not schemas.is_dir():
        pytest.fail(f"vendored upstream schemas are missing: expected them at {schemas}")
    return schemas


# --------------------------------------------------------------------------- helpers


def _split_api_version(api_version: str) -> tuple[str, str]:
    """`group/version` -> (group, version); the core group is ""."""
    group, _, version = api_version.rpartition("/")
    return group, version


def _gvk(obj: Mapping[str, Any]) -> GVK:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise KeyError(f"object has no string apiVersion and kind: {_describe(obj)}")
    group, version = _split_api_version(api_version)
    return group, version, kind


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{obj.get('apiVersion')}/{obj.get('kind')} {name or '<unnamed>'}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _format_errors(errors: Iterable[jsonschema.ValidationError]) -> list[str]:
    """One line per error: JSON path, message, and for anyOf/oneOf the closest branch's reason."""
    out: list[str] = []
    for error in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        text = f"{error.json_path}: {_shorten(error.message)}"
        if error.context:
            best = jsonschema.exceptions.best_match(error.context)
            if best is not None:
                text += f" (closest: {best.json_path}: {_shorten(best.message)})"
        out.append(text)
    return out


def _package_schemas() -> Path:
    """kubernetes-validate's bundled schema directory."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    return Path(str(root))


@functools.cache
def _bundled_versions() -> tuple[tuple[int, int], ...]:
    found = set()
    for entry in _package_schemas().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return tuple(sorted(found))


def _parse_minor(kubernetes_version: str) -> tuple[int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)", kubernetes_version)
    if match is None:
        raise ValueError(f"not a Kubernetes version: {kubernetes_version!r}")
    return int(match.group(1)), int(match.group(2))


def _strict_dir(kubernetes_version: str) -> Path:
    """The newest bundled strict schema set not newer than `kubernetes_version`."""
    wanted = _parse_minor(kubernetes_version)
    usable = [v for v in _bundled_versions() if v <= wanted]
    if not usable or wanted > _bundled_versions()[-1]:
        bundled = ", ".join(f"{a}.{b}" for a, b in _bundled_versions())
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version} "
            f"(bundled: {bundled}); upgrade kubernetes-validate"
        )
    major, minor = usable[-1]
    return _package_schemas() / f"v{major}.{minor}.0-local-strict"


@functools.cache
def _definitions(strict_dir: Path) -> Resource[Any]:
    contents = json.loads((strict_dir / "_definitions.json").read_text(encoding="utf-8"))
    return Resource.from_contents(contents)


def _builtin_schema_file(strict_dir: Path, api_version: str, kind: str) -> Path:
    # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
    stem = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return strict_dir / f"{kind.lower()}-{stem}.json"


# --------------------------------------------------------------------------- built-in kinds


@functools.cache
def _builtin_validator(strict_dir: Path, api_version: str, kind: str) -> jsonschema.Validator:
    path = _builtin_schema_file(strict_dir, api_version, kind)
    if not path.is_file():
        raise KeyError(
            f"kubernetes-validate has no schema for {api_version} {kind} in {strict_dir.name}"
        )
    schema = json.loads(path.read_text(encoding="utf-8"))
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(strict_dir) @ registry
    validator: jsonschema.Validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return validator


def builtin_errors(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Errors of a built-in kind against Kubernetes `kubernetes_version` (strict: no unknown
    fields); empty when valid. Same schemas and validator class as
    `kubernetes_validate.validate(obj, kubernetes_version, strict=True)`, built once per kind."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise KeyError(f"object has no string apiVersion and kind: {_describe(obj)}")
    validator = _builtin_validator(_strict_dir(kubernetes_version), api_version, kind)
    return _format_errors(validator.iter_errors(obj))


@functools.cache
def _has_builtin_schema(api_version: str, kind: str) -> bool:
    latest = _bundled_versions()[-1]
    strict_dir = _package_schemas() / f"v{latest[0]}.{latest[1]}.0-local-strict"
    return _builtin_schema_file(strict_dir, api_version, kind).is_file()


def is_crd(obj: Mapping[str, Any]) -> bool:
    """True for a custom resource: its API group has a dot and is not a built-in API group
    (`networking.k8s.io` and friends are built in; `kubeflow.org` is not)."""
    group, _, kind = _gvk(obj)
    if "." not in group:
        return False
    return not _has_builtin_schema(str(obj["apiVersion"]), kind)


# --------------------------------------------------------------------------- custom resources

#: Keywords whose value is one schema / a list of schemas / a map of name -> schema.
_SCHEMA_KEYS = ("items", "not")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYS = ("properties", "patternProperties")
#: OpenAPI-only keywords with no JSON Schema meaning (the x-kubernetes-* ones are handled).
_DROPPED_KEYS = frozenset({"nullable", "description", "default", "example", "externalDocs"})


def _is_object_node(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _translate(node: Any, *, structural: bool = True) -> Any:
    """OpenAPI v3 structural schema -> JSON Schema 2020-12 with the API server's semantics.

    `structural` is False inside allOf/anyOf/oneOf/not: those only constrain values and may
    not declare fields, so they get no unknown-field rule of their own.
    """
    if not isinstance(node, Mapping):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key.startswith("x-kubernetes-"):
            continue
        if key in _SCHEMA_KEYS:
            out[key] = _translate(value, structural=structural and key == "items")
        elif key in _SCHEMA_LIST_KEYS:
            out[key] = [_translate(item, structural=False) for item in value]
        elif key in _SCHEMA_MAP_KEYS:
            out[key] = {name: _translate(sub, structural=structural) for name, sub in value.items()}
        elif key == "additionalProperties":
            out[key] = _translate(value, structural=structural)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-embedded-resource") is True:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        if "properties" not in props.get("metadata", {}):
            props["metadata"] = {"$ref": _OBJECT_META_REF}
    if (
        structural
        and _is_object_node(node)
        and "additionalProperties" not in node
        and node.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map":
        out["x-list-map-keys"] = list(node.get("x-kubernetes-list-map-keys", []))
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


def _list_map_keys(
    validator: jsonschema.Validator, keys: list[str], instance: Any, schema: Schema
) -> Iterator[jsonschema.ValidationError]:
    """`x-kubernetes-list-type: map`: no two items may share the same key values."""
    if not isinstance(instance, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, Mapping):
            continue
        key = json.dumps([item.get(k) for k in keys])
        if key in seen:
            shown = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
            yield jsonschema.ValidationError(
                f"duplicate entry at index {index} ({shown}; first at index {seen[key]}): "
                "keys of a list-type map must be unique"
            )
        else:
            seen[key] = index


_CRDValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-list-map-keys": _list_map_keys}
)


def _crd_files() -> list[Path]:
    return sorted((upstream_schemas() / "crds").glob("*.yaml"))


@functools.cache
def _crd_versions(path: Path) -> dict[GVK, Schema]:
    """(group, version, kind) -> openAPIV3Schema for every CRD in one file."""
    found: dict[GVK, Schema] = {}
    with path.open(encoding="utf-8") as handle:
        documents = list(yaml.load_all(handle, Loader=_YamlLoader))
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec.get("versions", []):
            schema = version.get("schema", {}).get("openAPIV3Schema")
            if schema is not None:
                found[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return found


def _find_crd_schema(gvk: GVK) -> Schema:
    group = gvk[0]
    files = _crd_files()
    # CRD files are named <group>_<plural>.yaml: look there first, then everywhere.
    likely = [p for p in files if p.name.startswith(f"{group}_")]
    for path in [*likely, *(p for p in files if p not in likely)]:
        schema = _crd_versions(path).get(gvk)
        if schema is not None:
            return schema
    known = sorted(f"{g}/{v} {k}" for p in files for g, v, k in _crd_versions(p))
    raise KeyError(
        f"no CRD in {UPSTREAM / 'schemas' / 'crds'} defines {group}/{gvk[1]} {gvk[2]}; "
        f"known: {', '.join(known)}"
    )


@functools.cache
def _crd_validator(group: str, version: str, kind: str) -> jsonschema.Validator:
    openapi = _find_crd_schema((group, version, kind))
    schema: Schema = _translate(openapi)
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{group}/{version}"}
    props["kind"] = {"const": kind}
    # The API server checks the top-level metadata as ObjectMeta, whatever the CRD says.
    props["metadata"] = {"$ref": _OBJECT_META_REF}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    latest = _bundled_versions()[-1]
    definitions = _definitions(_package_schemas() / f"v{latest[0]}.{latest[1]}.0-local-strict")
    registry: Registry[Any] = definitions @ Registry()
    _CRDValidator.check_schema(schema)
    validator: jsonschema.Validator = _CRDValidator(schema, registry=registry)
    return validator


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of a custom resource against its vendored CRD; empty when
    valid. Raises KeyError when no CRD defines the object's group, version and kind."""
    validator = _crd_validator(*_gvk(obj))
    return _format_errors(validator.iter_errors(obj))
