"""The CLI's rough edges (issue 12, item 5), each through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ilab_gitops import __version__
from ilab_gitops.cli.typer_app import app
from tests.support.specs import ROOT

ENVS = ROOT / "environments"
REPO = "https://github.com/example/ilab-runs"

#: Runs the CLI with some top-level modules made unimportable, as on the core install.
HIDING_MAIN = textwrap.dedent(
    """
    import importlib.abc, sys

    HIDDEN = set(sys.argv[1].split(","))

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == h or name.startswith(h + ".") for h in HIDDEN):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    sys.argv = ["ilab-gitops", *sys.argv[2:]]
    from ilab_gitops.cli.entry import main
    main()
    """
)


def _without(hidden: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_ACTIONS": "", "ILAB_RESULTS_S3_BUCKET": "b"}
    return subprocess.run(
        [sys.executable, "-c", HIDING_MAIN, hidden, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("hidden", "args", "extra"),
    [
        ("git", ["diff", "--base", "HEAD"], "repo"),
        ("git", ["pr-comment", "--base", "HEAD"], "repo"),
        ("git,github,boto3,botocore", ["results", "sync", "--runs-repo", "o/n"], "repo"),
        ("kubernetes", ["status", "some-run"], "cluster"),
    ],
)
def test_a_missing_extra_is_a_usage_error_naming_it(
    hidden: str, args: list[str], extra: str, tmp_path: Path
) -> None:
    (tmp_path / "runs").mkdir()
    done = _without(hidden, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (message,) = done.stderr.splitlines()
    assert message.startswith("ilab-gitops")
    assert " is not installed" in message
    assert message.endswith(f"pip install 'ilab-gitops[{extra}]'")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_a_missing_module_that_is_no_extra_stays_an_internal_error(tmp_path: Path) -> None:
    done = _without("ilab_gitops.runsrepo", "diff", "--base", "HEAD", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.startswith("ilab-gitops: internal error: ModuleNotFoundError")


def test_version_alone_prints_the_version(tmp_path: Path) -> None:
    done = _without("nothing-hidden", "--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ilab-gitops {__version__}\n", "")


def test_no_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--debug"])
    assert result.exit_code == 2
    assert "Usage:" in result.stderr and result.stdout == ""


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("engine", "environment", "engines"),
    [("flux", "single-node-4xh100", "argocd"), ("argocd", "multi-node-gpu", "flux")],
)
def test_bootstrap_refuses_an_environment_its_engine_does_not_serve(
    engine: str, environment: str, engines: str
) -> None:
    code, out, err = _invoke(
        "bootstrap", engine, "--repo-url", REPO, "-e", str(ENVS), "--environment", environment
    )
    assert (code, out) == (2, "")
    assert err == (
        f'ilab-gitops bootstrap {engine}: environment "{environment}" is not applied by '
        f"{engine} (its spec.engines: {engines}); pick another --environment\n"
    )


def test_bootstrap_names_the_profiles_to_choose_from() -> None:
    code, out, err = _invoke("bootstrap", "flux", "--repo-url", REPO, "-e", str(ENVS))
    assert (code, out) == (2, "")
    assert err == (
        f"ilab-gitops bootstrap flux: {ENVS.as_posix()}/ holds 4 profiles (kind-dev, "
        "multi-node-gpu, single-node-4xh100, single-node-trainer); pass --environment NAME\n"
    )


def test_bootstrap_names_an_unknown_profile() -> None:
    code, _, err = _invoke(
        "bootstrap", "argocd", "--repo-url", REPO, "-e", str(ENVS), "--environment", "kind"
    )
    assert code == 2
    assert err == (
        f'ilab-gitops bootstrap argocd: no profile "kind" in {ENVS.as_posix()}/; it holds 4 '
        "(kind-dev, multi-node-gpu, single-node-4xh100, single-node-trainer)\n"
    )


@pytest.mark.parametrize(
    "command",
    [["validate"], ["render"], ["doctor"], ["diff", "--base", "x"], ["results", "sync"]],
)
def test_every_reporting_command_offers_the_same_format_choices(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--format", "yaml"])
    assert result.exit_code == 2
    assert "'text', 'github', 'json', 'auto'" in result.stderr


def test_doctor_reports_problems_as_json_or_annotations(tmp_path: Path) -> None:
    as_json = CliRunner().invoke(app, ["doctor", str(tmp_path), "--format", "json"])
    assert as_json.exit_code == 2
    problems = json.loads(as_json.stdout)
    assert problems and all(set(p) == {"path", "message"} for p in problems)
    as_text = CliRunner().invoke(app, ["doctor", str(tmp_path), "--format", "text"])
    assert as_text.stdout == ""
    shown = as_text.stderr.splitlines()
    assert shown[:-1] == [f"{p['path']}: {p['message']}" for p in problems]
    as_github = CliRunner().invoke(app, ["doctor", str(tmp_path), "--format", "github"])
    annotations = as_github.stderr.splitlines()[:-1]
    assert len(annotations) == len(problems)
    first = problems[0]
    assert annotations[0].startswith(f"::error title=ilab-gitops doctor,file={first['path']}::")
