"""GitHub's official OpenAPI description as a judge of requests and responses in tests.

Reads `tests/data/upstream/schemas/github/api.github.com.json.gz` (OpenAPI 3.0.3, from
@octokit/openapi) in place. Paths are matched like a router does (literal segments win over
templated ones); parameters, request bodies and response bodies are validated with
jsonschema after the OpenAPI 3.0 dialect is turned into JSON Schema draft 4: `nullable`
becomes a `null` type, `$ref` siblings are dropped (OpenAPI 3.0 ignores them), and the
keywords JSON Schema lacks (`example`, `readOnly`, `discriminator`, `x-*`) are left out.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from tests.support.specs import ROOT

SPEC_PATH = ROOT / "tests" / "data" / "upstream" / "schemas" / "github" / "api.github.com.json.gz"
BASE_URI = "urn:github-openapi"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_KEEP = {
    "type",
    "enum",
    "required",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "title",
    "description",
    "default",
}
_MAPS = {"properties", "patternProperties"}
_LISTS = {"allOf", "anyOf", "oneOf"}
_SINGLE = {"items", "not", "additionalProperties"}

Json = Any


def to_json_schema(schema: Json) -> Json:
    """An OpenAPI 3.0 schema object as JSON Schema draft 4 (refs point into BASE_URI)."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"$ref": BASE_URI + schema["$ref"]}
    out: dict[str, Json] = {}
    for key, value in schema.items():
        if key in _MAPS:
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in _LISTS:
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in _SINGLE:
            out[key] = to_json_schema(value)
        elif key in _KEEP:
            out[key] = value
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: Mapping[str, Json] = field(repr=False)
    parameters: tuple[Mapping[str, Json], ...] = field(repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", ""))


@dataclass(frozen=True)
class Match:
    operation: Operation
    path_params: dict[str, str]


class GitHubOpenApi:
    def __init__(self, path: Path = SPEC_PATH) -> None:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            self.doc: dict[str, Json] = json.load(handle)
        components = self.doc["components"]
        converted = {
            "components": {
                "schemas": {n: to_json_schema(s) for n, s in components["schemas"].items()}
            }
        }
        self.registry: Registry[Json] = Registry().with_resource(
            BASE_URI, DRAFT4.create_resource(converted)
        )
        self._routes: list[tuple[int, re.Pattern[str], str]] = []
        for template in self.doc["paths"]:
            pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            self._routes.append((template.count("{"), re.compile(f"^{pattern}$"), template))
        self._routes.sort(key=lambda r: (r[0], r[2]))
        self._validators: dict[str, Draft4Validator] = {}

    def _deref(self, node: Mapping[str, Json]) -> Mapping[str, Json]:
        while "$ref" in node:
            target: Json = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def operation(self, method: str, template: str) -> Operation | None:
        item = self.doc["paths"].get(template)
        if item is None or method.lower() not in item:
            return None
        spec = item[method.lower()]
        params = {}
        for raw in [*item.get("parameters", []), *spec.get("parameters", [])]:
            param = self._deref(raw)
            params[param["in"], param["name"]] = param
        return Operation(method.upper(), template, spec, tuple(params.values()))

    def match(self, method: str, path: str) -> Match | str:
        """The documented operation for `method path`, or why there is none."""
        for _, pattern, template in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            op = self.operation(method, template)
            if op is None:
                return f"{method} {path}: {template} is documented, but not for {method}"
            return Match(op, found.groupdict())
        return f"{method} {path}: no documented path matches"

    def validator(self, key: str, schema: Json) -> Draft4Validator:
        if key not in self._validators:
            self._validators[key] = Draft4Validator(to_json_schema(schema), registry=self.registry)
        return self._validators[key]

    def _errors(self, key: str, schema: Json, value: Json) -> list[str]:
        errors = sorted(self.validator(key, schema).iter_errors(value), key=lambda e: e.path)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:5]
        ]

    def binary_body(self, op: Operation) -> bool:
        """The operation takes raw bytes (a release asset upload), not JSON."""
        request_body = op.spec.get("requestBody")
        if request_body is None:
            return False
        return "application/json" not in self._deref(request_body)["content"]

    def check_request(
        self,
        match: Match,
        query: Mapping[str, Sequence[str]],
        body: Json | None,
        raw: bytes | None = None,
    ) -> list[str]:
        op, problems = match.operation, []
        where = f"{op.method} {op.template}"
        by_place = {(p["in"], p["name"]): p for p in op.parameters}
        for name, value in match.path_params.items():
            param = by_place.get(("path", name))
            if param is None:
                problems.append(f"{where}: path parameter {name} is not documented")
                continue
            problems.extend(
                f"{where}: path {name}={value!r}: {e}"
                for e in self._param_errors(f"{where}:path:{name}", param, value)
            )
        for name, values in query.items():
            param = by_place.get(("query", name))
            if param is None:
                problems.append(f"{where}: query parameter {name!r} is not documented")
                continue
            for value in values:
                problems.extend(
                    f"{where}: query {name}={value!r}: {e}"
                    for e in self._param_errors(f"{where}:query:{name}", param, value)
                )
        request_body = op.spec.get("requestBody")
        if request_body is not None and self.binary_body(op):
            if not raw:
                problems.append(f"{where}: the request body (the file) is empty")
            return problems
        if body is not None:
            if request_body is None:
                problems.append(f"{where}: sends a body, but the operation takes none")
            else:
                schema = self._deref(request_body)["content"]["application/json"]["schema"]
                problems.extend(
                    f"{where}: request body {e}"
                    for e in self._errors(f"{where}:request", schema, body)
                )
        elif request_body is not None and self._deref(request_body).get("required"):
            problems.append(f"{where}: the request body is required")
        return problems

    def _param_errors(self, key: str, param: Mapping[str, Json], raw: str) -> list[str]:
        schema = param.get("schema", {})
        value: Json = raw
        if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", raw):
            value = int(raw)
        elif schema.get("type") == "boolean" and raw in ("true", "false"):
            value = raw == "true"
        return self._errors(key, schema, value)

    def documented_statuses(self, op: Operation) -> set[str]:
        return set(op.spec["responses"])

    def check_response(self, op: Operation, status: int, body: Json | None) -> list[str]:
        where = f"{op.method} {op.template} -> {status}"
        responses = op.spec["responses"]
        raw = responses.get(str(status)) or responses.get("default")
        if raw is None:
            return [f"{where}: status {status} is not documented for this operation"]
        content = self._deref(raw).get("content")
        if content is None:
            return [] if body is None else [f"{where}: documented without a body, got one"]
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return [f"{where}: no application/json schema documented"]
        if body is None:
            return [f"{where}: documented with a body, got none"]
        return [f"{where}: {e}" for e in self._errors(f"{where}:response", schema, body)]

    def example(self, name: str) -> Json:
        """A copy of `components.examples[name].value` (GitHub's own sample object)."""
        return json.loads(json.dumps(self.doc["components"]["examples"][name]["value"]))


@cache
def github_openapi() -> GitHubOpenApi:
    """Loaded once per test session (about a second)."""
    return GitHubOpenApi()
