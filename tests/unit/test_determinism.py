"""`ilab-gitops render` writes the same bytes whatever the process around it looks like.

Each variant renders the bundled examples in a fresh interpreter: other hash seeds (set and
dict iteration order), PyYAML without its C extension (the pure-Python parser must build
the same specs), another working directory with the C locale. A spy in the child records
which YAML parser really ran, so a variant cannot silently test the same path twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.emit.render import merge_tree, run_folder
from ilab_gitops.manifests import compile_run
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run

ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI in the child. With ILAB_TEST_HIDE_LIBYAML set, `yaml._yaml` cannot be
# imported, so PyYAML comes up without CSafeLoader, exactly as on a build without libyaml.
# The spy counts constructions of the C and the pure-Python safe loaders (the spec reader
# subclasses one of them) and writes the counts to ILAB_TEST_REPORT at exit.
_CHILD = """
import atexit, json, locale, os, sys
if os.environ.get("ILAB_TEST_HIDE_LIBYAML"):
    sys.modules["yaml._yaml"] = None
import yaml
counts = {"c": 0, "pure": 0}
def spy(cls, key):
    original = cls.__init__
    def init(self, *args, **kwargs):
        counts[key] += 1
        original(self, *args, **kwargs)
    cls.__init__ = init
spy(yaml.SafeLoader, "pure")
if yaml.__with_libyaml__:
    spy(yaml.CSafeLoader, "c")
def report():
    with open(os.environ["ILAB_TEST_REPORT"], "w", encoding="utf-8") as handle:
        json.dump({"libyaml": yaml.__with_libyaml__,
                   "yaml._yaml": sys.modules.get("yaml._yaml") is not None,
                   "encoding": locale.getpreferredencoding(False), "cwd": os.getcwd(),
                   "hash": hash("ilab"), **counts}, handle)
atexit.register(report)
from ilab_gitops.cli.typer_app import main
main()
"""


#: Inherited settings a C-locale child must not see.
_LOCALE = {"LANG", "LANGUAGE", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONCOERCECLOCALE"}
Rendered = dict[str, tuple[dict[str, bytes], dict[str, Any]]]


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    other_cwd: bool = False
    hide_libyaml: bool = False


VARIANTS = (
    Variant("hashseed-0", {"PYTHONHASHSEED": "0"}),
    Variant("hashseed-1", {"PYTHONHASHSEED": "1"}),
    Variant("hashseed-12345", {"PYTHONHASHSEED": "12345"}),
    Variant("hashseed-random", {"PYTHONHASHSEED": "random"}),
    Variant("pure-python-yaml", {"PYTHONHASHSEED": "7"}, hide_libyaml=True),
    Variant(
        "c-locale-other-cwd",
        {
            "PYTHONHASHSEED": "99",
            "LANG": "C",
            "LC_ALL": "C",
            "PYTHONUTF8": "0",
            "PYTHONCOERCECLOCALE": "0",
        },
        other_cwd=True,
    ),
)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Each variant's rendered tree and spy report (the children run in parallel)."""
    base = tmp_path_factory.mktemp("determinism")
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    children = []
    for variant in VARIANTS:
        out, report = base / variant.name / "rendered", base / f"{variant.name}.json"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        if "LC_ALL" in variant.env:
            env = {k: v for k, v in env.items() if k not in _LOCALE and not k.startswith("LC_")}
        env.update(variant.env, ILAB_TEST_REPORT=str(report))
        if variant.hide_libyaml:
            env["ILAB_TEST_HIDE_LIBYAML"] = "1"
        args = [
            sys.executable, "-c", _CHILD, "render", str(ROOT / "spec" / "examples"),
            "--environments", str(ROOT / "environments"), "--out", str(out),
        ]  # fmt: skip
        cwd = elsewhere if variant.other_cwd else ROOT
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        children.append((variant, proc, out, report))
    results = {}
    for variant, proc, out, report in children:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, (variant.name, stdout.decode(), stderr.decode())
        results[variant.name] = (_tree(out), json.loads(report.read_text(encoding="utf-8")))
    return results


def test_every_variant_renders_identical_bytes(
    rendered: Rendered,
) -> None:
    reference_name = VARIANTS[0].name
    reference = rendered[reference_name][0]
    assert len(reference) > 10
    for name, (tree, _) in rendered.items():
        assert sorted(tree) == sorted(reference), f"{name}: other files than {reference_name}"
        differing = [path for path in reference if tree[path] != reference[path]]
        assert not differing, f"{name} differs from {reference_name} in {differing}"


def test_cli_output_matches_the_in_process_compiler(
    rendered: Rendered,
) -> None:
    """The files the CLI writes are the in-process tree's text as UTF-8 with \\n line ends."""
    environments = {env.metadata.name: env for env in map(load_environment, ENVIRONMENTS)}
    runs = [load_run(path) for path in EXAMPLES]
    compiled = {
        run_folder(run.spec.environment, run.metadata.name): compile_run(
            run, environments[run.spec.environment]
        )
        for run in runs
    }
    tree = merge_tree({}, compiled, environments=environments, prune=True)
    expected = {path: text.encode("utf-8") for path, text in tree.items()}
    assert rendered[VARIANTS[0].name][0] == expected


def test_the_variants_really_took_both_yaml_parsers(
    rendered: Rendered,
) -> None:
    """Spec files were parsed by libyaml normally and by pure Python with it hidden."""
    for variant in VARIANTS:
        report = rendered[variant.name][1]
        if variant.hide_libyaml:
            assert report["libyaml"] is False and report["yaml._yaml"] is False, report
            assert report["c"] == 0 and report["pure"] > 0, report
        else:
            assert report["libyaml"] is True, report
            assert report["c"] > 0, report


def test_the_variants_really_differ(rendered: Rendered) -> None:
    """Hash seeds, working directory and locale did change in the children."""
    reports = {variant.name: rendered[variant.name][1] for variant in VARIANTS}
    assert len({report["hash"] for report in reports.values()}) == len(VARIANTS)
    for variant in VARIANTS:
        report = reports[variant.name]
        assert (Path(report["cwd"]) != ROOT) == variant.other_cwd, report
        if "LC_ALL" in variant.env and sys.platform == "linux":
            assert report["encoding"].lower().replace("-", "") != "utf8", report
