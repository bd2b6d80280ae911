"""The typer-free fast path of `validate`/`render` behaves exactly like the typer app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ilab_gitops.cli.entry import Invocation, parse
from tests.support.specs import ROOT

ARGVS = [
    ["validate", "spec/examples", "environments"],
    ["validate", "spec/examples/minimal.yaml", "-e", "environments", "--format", "json"],
    ["validate", "spec/examples/minimal.yaml", "--environments=environments", "-f", "github"],
    ["validate", "no-such-file.yaml"],
    ["validate", "tests/invalid/duplicate-key/runs"],
    ["render", "spec/examples", "--out", "-"],
    ["render", "spec/examples/minimal.yaml", "-o", "{tmp}/out"],
    ["render", "spec/examples", "-o", "{tmp}/missing", "--check"],
    ["--debug", "render", "spec/examples", "--prune", "--out={tmp}/pruned"],
    # Not plain: typer answers, on both paths.
    ["validate", "--help"],
    ["render"],
    ["validate", "spec/examples", "--format", "yaml"],
    ["render", "spec/examples", "--bogus"],
]


def _run(argv: list[str], tmp: Path, fast: bool) -> tuple[int, str, str]:
    env = {**os.environ, "GITHUB_ACTIONS": "false"}
    env.pop("ILAB_GITOPS_NO_FASTPATH", None)
    if not fast:
        env["ILAB_GITOPS_NO_FASTPATH"] = "1"
    out = tmp / ("fast" if fast else "typer")
    out.mkdir()
    args = [a.replace("{tmp}", str(out)) for a in argv]
    code = "import sys; from ilab_gitops.cli.entry import main; sys.argv[0] = 'ilab-gitops'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    clean = (done.stdout + done.stderr).replace(str(out), "<out>")
    return (
        done.returncode,
        clean,
        "\n".join(sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())),
    )


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) for a in ARGVS])
def test_fast_path_matches_typer(argv: list[str], tmp_path: Path) -> None:
    fast = _run(argv, tmp_path, fast=True)
    typer = _run(argv, tmp_path, fast=False)
    assert fast == typer
    assert "Traceback" not in fast[1]


def test_plain_invocations_are_parsed() -> None:
    found = parse(["--debug", "render", "a.yaml", "b", "-e", "envs", "--check", "--out=-"])
    assert found == Invocation(
        "render", [Path("a.yaml"), Path("b")], Path("envs"), "auto", "-", True, False, True
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["schema"],
        ["validate"],
        ["validate", "-h"],
        ["validate", "x", "--check"],  # a render-only flag
        ["validate", "x", "-e"],  # a value is missing
        ["validate", "x", "--format", "xml"],
        ["render", "x", "-o", "--check"],
        ["validate", "x", "-ex"],
        ["render", "x", "--out="],
    ],
)
def test_anything_unusual_is_left_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_fast_validate_does_not_import_typer() -> None:
    code = (
        "import sys; from ilab_gitops.cli.entry import main;"
        "sys.argv = ['ilab-gitops', 'validate', 'spec/examples/minimal.yaml'];"
        "import atexit; atexit.register(lambda: print('typer' in sys.modules))\n"
        "main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
