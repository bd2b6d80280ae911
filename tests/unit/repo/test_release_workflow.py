"""The release workflow: tag trigger, trusted publishing confined to one job, every action
pinned by commit, and release notes that name the commit runs repos pin."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from ilab_gitops.load.sources import parse_yaml
from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
SHA = "0123456789abcdef0123456789abcdef01234567"


def _workflow() -> dict[str, Any]:
    data = parse_yaml(WORKFLOW.read_bytes(), WORKFLOW.name).data
    assert isinstance(data, dict)
    return data


def test_runs_on_version_tags_only() -> None:
    assert _workflow()["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+*"]}}


def test_id_token_only_where_pypi_is_published() -> None:
    workflow = _workflow()
    assert workflow["permissions"] == {}
    granted = {name: job["permissions"] for name, job in workflow["jobs"].items()}
    assert granted == {
        "dist": {"contents": "read"},
        "pypi": {"id-token": "write"},
        "images": {"contents": "write", "packages": "write", "pull-requests": "write"},
        "release": {"contents": "write"},
    }
    pypi = workflow["jobs"]["pypi"]
    assert pypi["environment"]["name"] == "pypi"
    [publish] = [s for s in pypi["steps"] if "gh-action-pypi-publish" in s["uses"]]
    assert "password" not in publish.get("with", {})  # trusted publishing, no token
    assert workflow["jobs"]["release"]["needs"] == ["dist", "pypi", "images"]


def test_every_action_is_pinned_by_commit() -> None:
    lines = [
        line.strip()
        for line in WORKFLOW.read_text().splitlines()
        if re.match(r"\s*(- )?uses:", line)
    ]
    assert len(lines) >= 6
    for line in lines:
        if line == "uses: $/.github/workflows/images.yml":
            continue  # this repository's own workflow, at the same commit as the caller
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


def test_the_build_is_hash_checked_and_checkouts_keep_no_credentials() -> None:
    jobs = _workflow()["jobs"]
    build = next(s["run"] for s in jobs["dist"]["steps"] if "hatchling" in s.get("run", ""))
    assert "--require-hashes -r .github/install/requirements.txt" in build
    for job in jobs.values():
        for step in job.get("steps", []):  # a called workflow has none here
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_the_notes_name_the_commit_to_pin(tmp_path: Path) -> None:
    """The release step's script, run with a stand-in `gh` that keeps what it was given."""
    [step] = [s for s in _workflow()["jobs"]["release"]["steps"] if "run" in s]
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "ilab_gitops-1.2.3.tar.gz").write_bytes(b"sdist")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$RUNNER_TEMP/gh-args"\n'
        'while [ "$1" != --notes-file ]; do shift; done\ncp "$2" "$RUNNER_TEMP/gh-notes"\n'
    )
    gh.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_SHA": SHA,
        "GITHUB_REPOSITORY": "acme/ilab-gitops",
        "TAG": "v1.2.3",
        "GH_TOKEN": "unused",
        "REFERENCES": "fetch ghcr.io/acme/ilab-gitops/fetch:1.2.3@sha256:" + "a" * 64,
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True, timeout=30)
    notes = (tmp_path / "gh-notes").read_text()
    assert f"ilab-gitops init DIR --workflows acme/ilab-gitops@{SHA}" in notes
    assert f"uses: acme/ilab-gitops/.github/workflows/ilab-validate.yml@{SHA} # v1.2.3" in notes
    assert f'ilab-ref: "{SHA}"' in notes
    assert "pip install 'ilab-gitops[repo]==1.2.3'" in notes
    assert env["REFERENCES"] in notes
    digest = hashlib.sha256(b"sdist").hexdigest()
    assert f"{digest}  ilab_gitops-1.2.3.tar.gz" in notes
    args = (tmp_path / "gh-args").read_text().splitlines()
    assert args[:5] == ["release", "create", "v1.2.3", "--repo", "acme/ilab-gitops"]
    assert "--verify-tag" in args and args[-1] == "dist/ilab_gitops-1.2.3.tar.gz"
