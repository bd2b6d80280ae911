"""`ilab-gitops validate` as users run it: the invalid corpus, formats, exit codes.

Every folder of tests/invalid/ is run through the real command line in a subprocess and must
print exactly its expected.txt and exit with expected_exit (see tests/invalid/README.md).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ilab_gitops.cli.typer_app
import ilab_gitops.load.workspace
from ilab_gitops.diagnostics import format_diagnostics
from ilab_gitops.load.messages import pattern_hints
from ilab_gitops.load.sources import MAX_STRING_CHARS, parse_yaml
from ilab_gitops.load.validation import check_document
from ilab_gitops.spec.credentials import find_credentials, looks_like_credential
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.conftest import ROOT, UPDATE_COMMAND

CORPUS = ROOT / "tests" / "invalid"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
CASE_FILES = {"args", "generate.json", "expected.txt", "expected_exit"}
DIAGNOSTIC_LINE = re.compile(
    r"^(?P<path>[^:\s]+):(?P<line>[1-9][0-9]*):(?P<column>[1-9][0-9]*): "
    r"error\[(?P<code>[a-z0-9-]+)\](?: (?P<field>[^ ]+):)? (?P<message>\S.*)$"
)


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("ilab-gitops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ilab_gitops.cli"]


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed command line; GitHub's variables are cleared unless `env` sets them."""
    environ = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "CI"}}
    environ.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100", **(env or {})})
    return subprocess.run(
        [*_cli_command(), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only; a loaded machine is slow
        check=False,
    )


def generate(recipe: Path, into: Path) -> None:
    """Write the files a generate.json describes (binary or large inputs kept out of git)."""
    files: dict[str, list[Any]] = json.loads(recipe.read_text(encoding="utf-8"))
    for rel, parts in files.items():
        data = b""
        for part in parts:
            if isinstance(part, str):
                data += part.encode("utf-8")
            elif "hex" in part:
                data += bytes.fromhex(part["hex"])
            else:
                data += str(part["repeat"]).encode("utf-8") * int(part["times"])
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def prepare(case: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A scratch copy of `case`, ready to run, and the `validate` arguments for it."""
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns(*CASE_FILES))
    if (case / "generate.json").is_file():
        generate(case / "generate.json", work)
    if not (work / "environments").exists():
        shutil.copytree(ROOT / "environments", work / "environments")
    if (case / "args").is_file():
        inputs = (case / "args").read_text(encoding="utf-8").split()
    else:
        inputs = ["runs" if (work / "runs").is_dir() else "environments"]
    return work, ["validate", *inputs, "--environments", "environments", "--format", "text"]


def _fail_with_diff(case: Path, expected: str, actual: str) -> None:
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{case.name}/expected.txt",
            tofile="actual stderr",
        )
    )
    pytest.fail(f"{diff}\nif the new output is right: {UPDATE_COMMAND}", pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_invalid_case(case: Path, tmp_path: Path, update_goldens: bool) -> None:
    work, args = prepare(case, tmp_path)
    result = run_cli(args, cwd=work)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode not in (0, 3), (result.returncode, result.stderr)
    assert result.stdout == ""
    if update_goldens:
        (case / "expected.txt").write_text(result.stderr, encoding="utf-8")
        (case / "expected_exit").write_text(f"{result.returncode}\n", encoding="utf-8")
        return
    expected = (case / "expected.txt").read_text(encoding="utf-8")
    if result.stderr != expected:
        _fail_with_diff(case, expected, result.stderr)
    assert result.returncode == int((case / "expected_exit").read_text(encoding="utf-8"))


def test_corpus_is_complete() -> None:
    """At least 30 cases; each has inputs and expectations, and every line is a diagnostic."""
    assert len(CASES) >= 30
    for case in CASES:
        inputs = {p.name for p in case.iterdir()} - CASE_FILES
        assert inputs <= {"runs", "environments"}, (case.name, inputs)
        assert inputs or (case / "generate.json").is_file(), case.name
        assert (case / "expected_exit").read_text(encoding="utf-8") == "2\n", case.name
        lines = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
        assert lines, case.name
        for line in lines:
            assert DIAGNOSTIC_LINE.match(line), (case.name, line)


def test_corpus_covers_every_kind_of_mistake() -> None:
    """Deleting the only case for a kind of mistake fails here."""
    codes = {
        m.group("code")
        for case in CASES
        for line in (case / "expected.txt").read_text(encoding="utf-8").splitlines()
        if (m := DIAGNOSTIC_LINE.match(line))
    }
    assert codes >= {
        "yaml-syntax",
        "yaml-tab",
        "yaml-alias",
        "duplicate-key",
        "too-many-nodes",
        "too-deep",
        "file-too-large",
        "string-too-long",
        "not-utf8",
        "empty-file",
        "multiple-documents",
        "not-a-mapping",
        "bad-key",
        "unsupported-tag",
        "unknown-kind",
        "unknown-field",
        "missing-field",
        "wrong-type",
        "invalid-value",
        "too-long",
        "bad-format",
        "out-of-range",
        "inline-credential",
        "invalid-combination",
        "unknown-environment",
        "duplicate-name",
        "no-such-file",
        "number-too-large",
    }


def test_alias_and_nesting_bombs_are_located_errors(tmp_path: Path) -> None:
    for name in ("alias-bomb", "nesting-bomb"):
        work, args = prepare(CORPUS / name, tmp_path)
        result = run_cli(args, cwd=work)
        assert result.returncode == 2
        assert "error[too-" in result.stderr


def test_every_pattern_of_the_spec_has_a_hint() -> None:
    """A new string pattern in the models needs words in validation.py, not a raw regex."""
    patterns: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(PipelineRun.model_json_schema())
    walk(Environment.model_json_schema())
    assert patterns
    assert patterns - set(pattern_hints()) == set()


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("AKIA" + "ABCDEFGHIJKLMNOP", "an AWS access key id"),
        ("token hf_" + "a1B2" * 9, "a Hugging Face token"),
        ("ghp_" + "x" * 36, "a GitHub token"),
        ("github_pat_" + "A1_" * 20, "a GitHub token"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "a private key"),
        ("s3://user:pa55@bucket/key", "a password in a URL"),
        ("sk-" + "abcd" * 10, "an OpenAI-style API key"),
        ("https://github.com/instructlab/taxonomy", None),
        ("quay.io/org/fetch@sha256:" + "ab" * 32, None),
        ("9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", None),
        ("hf_short", None),
        ("user@example.com", None),
    ],
)
def test_what_looks_like_a_credential(text: str, what: str | None) -> None:
    assert looks_like_credential(text) == what


def test_a_credential_is_never_echoed_even_as_a_key() -> None:
    key = "ghp_" + "zq" * 18
    text = f"kind: PipelineRun\nspec:\n  {key}: 1\n  url: https://u:zq-pass@h.example/x\n"
    _, diagnostics = check_document(parse_yaml(text.encode(), "r.yaml"))
    shown = format_diagnostics(diagnostics, "json")
    assert "inline-credential" in shown
    assert "zq" not in shown.replace("zq-", "") and "zq-pass" not in shown
    assert [d.field for d in diagnostics if d.code == "inline-credential"] == [
        'spec["<redacted>"]',
        "spec.url",
    ]


def test_credential_scan_finds_nothing_in_long_harmless_strings() -> None:
    # A quadratic URL pattern once took ~1.5 s per 16 KiB word; a 256 KiB file holds 15.
    # Its speed is measured by `make bench`; here the long near-miss must not be a finding.
    data = {"a": ["a" * MAX_STRING_CHARS] * 15, "b": "x://u:" + "p" * MAX_STRING_CHARS}
    assert list(find_credentials(data)) == []


# --------------------------------------------------------------------------- formats


ODD_RUN = """\
apiVersion: gitops.instructlab.ai/v1alpha1
kind: PipelineRun
metadata:
  name: granite-odd
spec:
  environment: kind-dev
  baseModel:
    pvc: {claimName: models, path: granite-7b}
  sdgData:
    secretRef: {name: sdg-object-store}
  taxonomy:
    repoUrl: https://github.com/instructlab/taxonomy
    commit: 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432
  training:
    nnodes: 1
    nprocPerNode: 1
    "50%,x:y": 1
  evaluation:
    judgeSecretRef: {name: judge-server}
  output:
    secretRef: {name: model-output-store}
"""


def _odd_case(tmp_path: Path) -> Path:
    """A run whose file name and field hold the characters GitHub annotations must escape."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a,b:c.yaml").write_text(ODD_RUN, encoding="utf-8")
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    return tmp_path


def test_github_format_escapes_properties_and_message(tmp_path: Path) -> None:
    work = _odd_case(tmp_path)
    result = run_cli(["validate", "runs", "--format", "github"], cwd=work)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "::error file=runs/a%2Cb%3Ac.yaml,line=17,col=5,"
        'title=unknown-field spec.training["50%25%2Cx%3Ay"]::'
        'unknown field "50%25,x:y"\n'
    )


def test_github_format_is_automatic_under_github_actions(tmp_path: Path) -> None:
    work = _odd_case(tmp_path)
    under_actions = run_cli(["validate", "runs"], cwd=work, env={"GITHUB_ACTIONS": "true"})
    elsewhere = run_cli(["validate", "runs"], cwd=work)
    assert under_actions.stderr.startswith("::error file=runs/a%2Cb%3Ac.yaml,line=17,col=5,")
    assert elsewhere.stderr == (
        'runs/a,b:c.yaml:17:5: error[unknown-field] spec.training["50%,x:y"]: '
        'unknown field "50%,x:y"\n'
    )
    assert under_actions.returncode == elsewhere.returncode == 2


def test_json_format_prints_every_field_on_stdout(tmp_path: Path) -> None:
    work, args = prepare(CORPUS / "two-errors-in-one-file", tmp_path)
    args[args.index("text")] = "json"
    result = run_cli(args, cwd=work)
    assert result.returncode == 2
    assert result.stderr == ""
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    assert len(found) == 3
    assert found[0] == {
        "path": "runs/run.yaml",
        "line": 5,
        "column": 9,
        "severity": "error",
        "code": "bad-format",
        "field": "metadata.name",
        "message": '"Granite" must be a DNS-1035 label: lowercase letters, digits and '
        "'-', starting with a letter and ending with a letter or digit",
    }
    assert [(d["line"], d["code"]) for d in found] == [
        (5, "bad-format"),
        (18, "wrong-type"),
        (21, "unknown-field"),
    ]


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_valid_inputs_exit_0(fmt: str) -> None:
    result = run_cli(["validate", "spec/examples", "environments", "--format", fmt], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        assert (result.stdout, result.stderr) == ("[]\n", "")
    else:
        assert result.stdout == ""
        assert re.fullmatch(
            r"[1-9][0-9]* file\(s\) valid: [1-9][0-9]* run\(s\), [1-9][0-9]* environment\(s\)\n",
            result.stderr,
        )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Usage: "),
        (["validate"], "Missing argument"),
        (["validate", "--bogus", "runs"], "No such option: --bogus"),
        (["validate", "runs", "--format", "xml"], "'xml' is not one of"),
    ],
    ids=["no-arguments", "no-paths", "unknown-option", "unknown-format"],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], says: str) -> None:
    result = run_cli(args, cwd=ROOT)
    assert result.returncode == 2
    assert says in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def _crash(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize("debug", [False, True])
def test_internal_error_exits_3_with_one_line(
    debug: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ilab_gitops.load.workspace, "load_workspace", _crash)
    argv = ["ilab-gitops", *(["--debug"] if debug else []), "validate", "runs"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        ilab_gitops.cli.typer_app.main()
    assert exited.value.code == 3
    err = capsys.readouterr().err
    if debug:
        assert err.startswith("Traceback (most recent call last):\n")
        assert err.endswith("RuntimeError: boom\nilab-gitops: internal error: RuntimeError: boom\n")
    else:
        assert err == "ilab-gitops: internal error: RuntimeError: boom\n"
