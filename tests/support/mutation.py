"""`make mutate`: a small mutation test of the compiler core, the classifier and the escaping.

Why not mutmut: it rewrites the tree it runs in and needs its own configuration per layout;
this script needs nothing beyond the dev venv. For each target module it parses the source,
lists one-token mutants (a comparison flipped, `and`/`or` swapped, a `not` dropped, a boolean
or small integer constant changed, `+`/`-` swapped), and runs the module's tests against each
mutant from a copy of `compiler/` placed first on PYTHONPATH, so the working tree is never
touched. A mutant is killed when the tests fail (or time out); the score is killed / run.

    python -m tests.support.mutation [--max N] [--module NAME]

`--max` takes an evenly spaced, deterministic subset of each module's mutants (the full run
takes long on a small machine). Exit 0 always; the score is the output.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "compiler" / "ilab_gitops"

#: Module (relative to the package) -> the tests that should kill its mutants.
TARGETS: dict[str, tuple[str, ...]] = {
    "manifests/compile.py": ("tests/unit/test_invariants.py",),
    "repo/classify.py": ("tests/unit/repo/test_classify.py",),
    "ghtext.py": ("tests/unit/test_ghtext.py",),
}

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position among the module's mutation points, in source order
    line: int
    description: str
    source: str


def _points(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """(node, description) of every place a one-token mutation applies, in walk order."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) in _COMPARE_SWAPS:
                    yield node, f"{type(op).__name__} -> {_COMPARE_SWAPS[type(op)].__name__}"
                    break
        elif isinstance(node, ast.BoolOp):
            yield (
                node,
                f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}",
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not removed"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, f"{node.value} -> {not node.value}"
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and 0 <= node.value <= 100_000
        ):
            yield node, f"{node.value} -> {node.value + 1}"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            yield node, f"{type(node.op).__name__} swapped"


def _mutate(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.Compare):
        ops = list(node.ops)
        for i, op in enumerate(ops):
            if type(op) in _COMPARE_SWAPS:
                ops[i] = _COMPARE_SWAPS[type(op)]()
                break
        node.ops = ops
        return node
    if isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node
    if isinstance(node, ast.UnaryOp):
        return node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
        return node
    if isinstance(node, ast.BinOp):
        node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        return node
    raise AssertionError(node)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring constants: mutating them proves nothing."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            found.add(id(first.value))
    return found


def mutants(module: str) -> list[Mutant]:
    source = (PACKAGE / module).read_text(encoding="utf-8")
    tree = ast.parse(source)
    skip = _docstrings(tree)
    count = sum(1 for node, _ in _points(tree) if id(node) not in skip)
    out: list[Mutant] = []
    for index in range(count):
        fresh = ast.parse(source)
        points = [(n, d) for n, d in _points(fresh) if id(n) not in _docstrings(fresh)]
        node, description = points[index]
        line = getattr(node, "lineno", 0)
        _replace(fresh, node, _mutate(copy.copy(node)))
        mutated = ast.unparse(ast.fix_missing_locations(fresh))
        out.append(Mutant(module, index, line, description, mutated))
    return out


def _subset(items: list[Mutant], limit: int | None) -> list[Mutant]:
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _run_tests(workdir: Path, tests: tuple[str, ...], timeout: float) -> str:
    """'killed', 'survived' or 'timeout' (counted as killed)."""
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=None, help="mutants per module (subset)")
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    args = parser.parse_args(argv)
    totals = {"killed": 0, "survived": 0, "timeout": 0}
    with tempfile.TemporaryDirectory(prefix="ilab-mutate-") as scratch:
        # The same layout as the checkout: the package under compiler/, environments/ beside
        # it (a source checkout reads the reference profiles from there).
        workdir = Path(scratch) / "compiler"
        shutil.copytree(
            PACKAGE, workdir / "ilab_gitops", ignore=shutil.ignore_patterns("__pycache__")
        )
        (Path(scratch) / "environments").symlink_to(ROOT / "environments")
        for module in args.module or sorted(TARGETS):
            tests = TARGETS[module]
            target = workdir / "ilab_gitops" / module
            original = target.read_text(encoding="utf-8")
            started = time.monotonic()
            baseline = _run_tests(workdir, tests, timeout=1800)
            budget = max(60.0, 3 * (time.monotonic() - started))
            if baseline != "survived":
                print(f"{module}: the tests fail without mutation; skipped", flush=True)
                continue
            chosen = _subset(mutants(module), args.max)
            for mutant in chosen:
                target.write_text(mutant.source, encoding="utf-8")
                try:
                    outcome = _run_tests(workdir, tests, budget)
                finally:
                    target.write_text(original, encoding="utf-8")
                totals[outcome] += 1
                print(f"{module}:{mutant.line}: {mutant.description}: {outcome}", flush=True)
    run = sum(totals.values())
    killed = totals["killed"] + totals["timeout"]
    score = 100 * killed / run if run else 0.0
    print(f"mutation score: {killed}/{run} killed ({score:.0f} %), {totals['survived']} survived")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
