"""Layers (STYLE.md habit 11): the CLI stays light, the pure core stays pure.

Checked in fresh interpreters, where `sys.modules` shows exactly what an import pulled in.
An import hook also records attempts to import a forbidden package, so the tests hold on a
machine where those packages are not installed (an attempt there would go unnoticed by
`sys.modules` alone, e.g. behind `try: import torch except ImportError`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: Heavy or side-effecting packages that only step images and CI helpers may import.
HEAVY = ("torch", "boto3", "botocore", "kubernetes", "github", "git", "huggingface_hub",
         "instructlab", "transformers", "httpx")  # fmt: skip
#: What the pure core (spec models, compiler, renderer, emitter) must not load.
CORE_FORBIDDEN = ("ilab_gitops.cli", "ilab_gitops.steps", "ilab_gitops.results", "typer", "click")

_PRELUDE = """
import importlib.abc, json, sys
HEAVY = {heavy!r}
attempted = set()
class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            attempted.add(name)
        return None
sys.meta_path.insert(0, Recorder())

def loaded(prefixes):
    return sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in prefixes))
"""


def _run(body: str) -> dict[str, Any]:
    code = _PRELUDE.format(heavy=HEAVY) + body
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_cli_and_its_commands_load_no_heavy_package() -> None:
    result = _run(
        """
import contextlib, io
import ilab_gitops.cli.typer_app
after_import = loaded(HEAVY)
codes = []
for argv in (
    ["validate", "spec/examples/minimal.yaml", "--environments", "environments"],
    ["render", "spec/examples", "--environments", "environments", "--out", "-"],
):
    sys.argv = ["ilab-gitops", *argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            ilab_gitops.cli.typer_app.main()
        except SystemExit as done:
            codes.append(done.code)
print(json.dumps({"codes": codes, "after_import": after_import, "after_commands": loaded(HEAVY),
                  "attempted": sorted(attempted)}))
"""
    )
    assert result["codes"] == [0, 0], "validate or render failed in the child"
    assert result["after_import"] == []
    assert result["after_commands"] == []
    assert result["attempted"] == []


def test_pure_core_never_loads_the_cli_steps_or_ci() -> None:
    result = _run(
        f"""
import ilab_gitops.manifests, ilab_gitops.emit.render, ilab_gitops.spec, ilab_gitops.emit.yaml_emit
after_import = loaded({CORE_FORBIDDEN!r} + HEAVY)
# Compile and render for real: lazy imports inside functions count too. Specs are read
# with the reading layer (sources, validation), which must not load the CLI either.
from pathlib import Path
from ilab_gitops.manifests import compile_run
from ilab_gitops.emit.render import merge_tree
from ilab_gitops.load.workspace import load_workspace
ws = load_workspace([Path("spec/examples")], Path("environments"))
assert ws.ok and ws.runs, ws.diagnostics
runs = {{r.run.metadata.name: compile_run(r.run, r.environment) for r in ws.runs}}
files = merge_tree({{}}, runs, prune=True)
assert files
print(json.dumps({{"after_import": after_import,
                  "after_compile": loaded({CORE_FORBIDDEN!r} + HEAVY),
                  "attempted": sorted(attempted)}}))
"""
    )
    assert result["after_import"] == []
    assert result["after_compile"] == []
    assert result["attempted"] == []


def test_the_checks_can_see_a_forbidden_import() -> None:
    """The recorder and the `loaded` helper do notice a forbidden import when one happens."""
    result = _run(
        """
import ilab_gitops.emit.render
try:
    import torch  # noqa: F401
except ImportError:
    pass
import typer  # noqa: F401
print(json.dumps({"attempted": sorted(attempted), "loaded": loaded(("typer",))}))
"""
    )
    assert "torch" in result["attempted"]
    assert result["loaded"] and result["loaded"][0] == "typer"
