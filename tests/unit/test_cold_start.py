"""A one-spec `validate` through the console script's fast path loads only what it needs:
no typer or click, no importlib.metadata (pydantic's plugin lookup is answered in advance),
and for a valid file neither the wording of problems (`load.messages`, difflib) nor the
GitHub escaping; explicit `PYDANTIC_DISABLE_PLUGINS` leaves pydantic's own lookup in charge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import contextlib, io, json, sys
sys.argv = ["ilab-gitops", "validate", "spec/examples/minimal.yaml",
            "--environments", "environments"]
from ilab_gitops.cli import entry
code = None
with contextlib.redirect_stderr(io.StringIO()):
    try:
        entry.main()
    except SystemExit as done:
        code = done.code
unwanted = ("typer", "click", "importlib.metadata", "ilab_gitops.load.messages", "difflib",
            "ilab_gitops.ghtext")
loaded = [m for m in unwanted if m in sys.modules]
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _child(extra_env: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYDANTIC_", "ILAB_"))}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_fast_path_validate_loads_only_what_a_valid_file_needs() -> None:
    assert _child({}) == {"code": 0, "loaded": []}


def test_explicit_plugin_setting_keeps_pydantics_lookup() -> None:
    result = _child({"PYDANTIC_DISABLE_PLUGINS": "some-plugin"})
    assert result["code"] == 0
    assert result["loaded"] == ["importlib.metadata"]
