"""Run Argo CD Notifications templates and trigger expressions through the real Go engines
(text/template + sprig, expr), via the small program in gotemplate/main.go.

Needs Go and Debian's Go sources of sprig and expr (no network):
    apt-get install golang-go golang-github-masterminds-sprig-dev golang-github-antonmedv-expr-dev
Skipped when they are absent (failed under CI=ILAB_REQUIRE_GO=1).

Versions differ from Argo CD's: Debian bookworm has sprig 3.2.3 (Argo CD: 3.3) and expr 1.8.9
(Argo CD: expr-lang 1.16+). The templates and expressions use only what both have: sprig's
dig/has/hasPrefix/trimPrefix/list, expr's any/filter/in/startsWith/nil and `.field` closures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent / "gotemplate"
GOPATH = Path("/usr/share/gocode")
NEEDED = (GOPATH / "src/github.com/Masterminds/sprig", GOPATH / "src/github.com/antonmedv/expr")
INSTALL = (
    "apt-get install golang-go golang-github-masterminds-sprig-dev golang-github-antonmedv-expr-dev"
)


def _missing() -> str | None:
    if shutil.which("go") is None:
        return "go is not installed"
    for path in NEEDED:
        if not path.is_dir():
            return f"{path} is missing"
    return None


def build(tmp: Path) -> Path:
    """Compile the evaluator once; skip (or fail when ILAB_REQUIRE_GO is set) without Go."""
    missing = _missing()
    if missing:
        message = f"{missing}: {INSTALL}"
        if os.environ.get("ILAB_REQUIRE_GO"):
            pytest.fail(message)
        pytest.skip(message)
    binary = tmp / "gotemplate"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOCACHE": str(tmp / "gocache"),
        "GOFLAGS": "",
    }
    subprocess.run(
        ["go", "build", "-o", str(binary), "main.go"],
        cwd=HERE,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return binary


def evaluate(binary: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(binary)],
        input=json.dumps({"cases": cases}),
        text=True,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: list[dict[str, Any]] = json.loads(done.stdout)["cases"]
    return result
