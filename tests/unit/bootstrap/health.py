"""Run health checks the way Argo CD and Flux do, for the bootstrap tests.

- `argocd_lua_health`: an Argo CD Lua health script under Lua 5.1 (lupa's `lua51` module;
  Argo CD embeds gopher-lua, a Lua 5.1 implementation), with the global `obj` set to the live
  object and only the libraries Argo CD opens (base, table, string, math).
- `flux_cel_health`: Flux `healthCheckExprs` with cel-python, following fluxcd/pkg
  `runtime/cel/status_evaluator.go`: observedGeneration first, then inProgress, failed,
  current; the first true wins, none true is InProgress. The object's top-level fields are the
  CEL variables. cel-go (unchecked, as Flux parses) fails on a reference to a top-level field
  the object lacks (`has(status.x)` with no `status`: "no such attribute(s)"), while cel-python
  answers false; that case is reported here as "Unknown", which is what kstatus makes of an
  evaluation error (Flux keeps waiting).
- `argocd_builtin_job_health`: a port of Argo CD's built-in batch/v1 Job check
  (gitops-engine/pkg/health/health_job.go, Aug 2026), to show where the override differs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celpy
import yaml
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError
from lupa import lua51

from tests.support.k8s_schemas import UPSTREAM, upstream_schemas

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"

ARGOCD_STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended"})
#: Globals Argo CD's Lua VM does not offer (it opens base, table, string and math only).
_UNSAFE_GLOBALS = (
    "io",
    "os",
    "debug",
    "package",
    "require",
    "module",
    "dofile",
    "loadfile",
    "load",
    "loadstring",
    "python",
)
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def load_object(path: Path) -> dict[str, Any]:
    """A YAML fixture as the API server would serve it (JSON: timestamps are strings)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    normalised: dict[str, Any] = json.loads(json.dumps(data, default=_json_default))
    return normalised


def argocd_job_fixtures() -> Path:
    """The vendored `tests/data/upstream/fixtures/argocd-job` Jobs."""
    upstream_schemas()
    folder = UPSTREAM / "fixtures" / "argocd-job"
    assert folder.is_dir(), f"{folder} is missing"
    return folder


# --------------------------------------------------------------------------- Argo CD Lua


def _to_lua(runtime: Any, value: Any) -> Any:
    """Python JSON value -> Lua value: dicts and lists become tables (lists 1-based)."""
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            table[key] = _to_lua(runtime, item)
        return table
    if isinstance(value, list):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            table[index] = _to_lua(runtime, item)
        return table
    return value


def argocd_lua_health_or_none(
    script: str, obj: Mapping[str, Any], *, hide: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """(status, message) returned by an Argo CD Lua health script for `obj`, or None when
    it returns nil (Argo CD 3 then gives the object no health). `hide`: more globals to
    remove, to show a script needs only the base library."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    assert runtime.eval("_VERSION") == "Lua 5.1"
    lua_globals = runtime.globals()
    for name in (*_UNSAFE_GLOBALS, *hide):
        lua_globals[name] = None
    lua_globals["obj"] = _to_lua(runtime, obj)
    result = runtime.execute(script)
    if result is None:
        return None
    status = result["status"]
    message = result["message"]
    assert status in ARGOCD_STATUSES, f"not an Argo CD health status: {status!r}"
    assert isinstance(message, str), f"message is not a string: {message!r}"
    return str(status), message


def argocd_lua_health(script: str, obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) returned by an Argo CD Lua health script for `obj`."""
    result = argocd_lua_health_or_none(script, obj)
    assert result is not None, "the script returned nothing"
    return result


# --------------------------------------------------------------------------- Flux CEL


def _referenced_top_level(expr: str) -> set[str]:
    without_strings = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expr)
    names = re.findall(r"(?<![\w.])([A-Za-z_]\w*)\b", without_strings)
    return {name for name in names if name in _TOP_LEVEL}


def flux_cel_health(exprs: Mapping[str, Any], obj: Mapping[str, Any]) -> str:
    """kstatus verdict of a Flux `healthCheckExprs` entry: Current, Failed, InProgress or
    Unknown (an evaluation error)."""
    status = obj.get("status")
    metadata = obj.get("metadata")
    if isinstance(status, Mapping) and isinstance(metadata, Mapping):
        observed = status.get("observedGeneration")
        generation = metadata.get("generation")
        if observed is not None and generation is not None and observed != generation:
            return "InProgress"
    env = celpy.Environment()
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    for key, verdict in (
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ):
        expr = exprs.get(key)
        if not expr:
            continue
        if _referenced_top_level(expr) - set(obj):
            return "Unknown"
        try:
            value = env.program(env.compile(expr)).evaluate(activation)
        except CELEvalError:
            return "Unknown"
        if isinstance(value, CELEvalError):
            return "Unknown"
        assert isinstance(value, BoolType), f"{key}: not a bool: {value!r}"
        if bool(value):
            return verdict
    return "InProgress"


# --------------------------------------------------------------------------- Argo CD built-in


def argocd_builtin_job_health(obj: Mapping[str, Any]) -> str:
    """Argo CD's built-in batch/v1 Job health status (ported from gitops-engine)."""
    failed = complete = suspended = False
    for condition in (obj.get("status") or {}).get("conditions") or []:
        ctype = condition.get("type")
        if ctype == "Failed":
            failed = complete = True
        elif ctype == "Complete":
            complete = True
        elif ctype == "Suspended":
            complete = True
            if condition.get("status") == "True":
                suspended = True
    if not complete:
        return "Progressing"
    if failed:
        return "Degraded"
    if suspended:
        return "Suspended"
    return "Healthy"
