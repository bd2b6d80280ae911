"""The PR comment workflow's JavaScript, run under Node against the GitHub fake.

The script is taken from ilab-pr-comment.yml as it is, and run as actions/github-script v7
runs it (tests/js/run_github_script.cjs: octokit from @actions/github, @actions/core). The
fake checks every request and response against GitHub's OpenAPI description. Node's
packages come from tests/js/package-lock.json (`make pytest` runs `npm ci` there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.load.sources import parse_yaml
from ilab_gitops.runsrepo.comment import MARKER
from tests.conftest import ROOT
from tests.support.github_fake import BODY_LIMIT, FakeComment, FakeGitHub, running_fake_github
from tests.support.github_openapi import SPEC_PATH, github_openapi
from tests.unit.repo.gitutil import needs as _needs

JS = ROOT / "tests" / "js"
WORKFLOW = ROOT / ".github" / "workflows" / "ilab-pr-comment.yml"
REPO = "example-org/runs"
PR = 7
BOT = "github-actions[bot]"
NOTE = "**Truncated**: the full summary is in the workflow artifact."


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs(shutil.which("node") is not None, "node is not installed")
    _needs((JS / "node_modules" / "@actions" / "github").is_dir(), "run `make pytest` (npm ci)")
    _needs(SPEC_PATH.is_file(), f"GitHub's OpenAPI description is missing: {SPEC_PATH}")
    data: Any = parse_yaml(WORKFLOW.read_bytes(), WORKFLOW.name).data
    [step] = [s for s in data["jobs"]["comment"]["steps"] if "github-script" in s.get("uses", "")]
    path = tmp_path_factory.mktemp("script") / "comment.js"
    path.write_text(step["with"]["script"])
    return path


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with running_fake_github(github_openapi()) as server:
        server.login = BOT  # the identity of GITHUB_TOKEN
        server.add_pull(REPO, PR, ["runs/r1.yaml"])
        yield server


@dataclass
class Ran:
    code: int
    out: str


def _head_sha(fake: FakeGitHub) -> str:
    return str(fake.api.example("pull-request")["head"]["sha"])


def run(script: Path, fake: FakeGitHub, tmp_path: Path, body: str, head: str | None = None) -> Ran:
    summary = tmp_path / "summary"
    summary.mkdir(exist_ok=True)
    (summary / "pr-number").write_text(f"{PR}\n")
    (summary / "comment.md").write_text(body, encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"],
        "NODE_PATH": str(JS / "node_modules"),
        "GITHUB_API_URL": fake.url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_TOKEN": "ghs_fake",
        "SUMMARY_DIR": str(summary),
        "HEAD_SHA": head or _head_sha(fake),
        "COMMENT_AUTHOR": BOT,
    }
    done = subprocess.run(
        ["node", str(JS / "run_github_script.cjs"), str(script)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return Ran(done.returncode, done.stdout + done.stderr)


def comments(fake: FakeGitHub) -> list[FakeComment]:
    return fake.repo(REPO).comments_on(PR)


def test_creates_then_updates_its_own_comment(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    first = run(script, fake, tmp_path, f"{MARKER}\nfirst\n")
    assert first.code == 0, first.out
    [comment] = comments(fake)
    assert (comment.body, comment.author) == (f"{MARKER}\nfirst\n", BOT)
    assert f"created comment {comment.id} on #{PR}" in first.out

    second = run(script, fake, tmp_path, f"{MARKER}\nsecond\n")
    assert second.code == 0, second.out
    assert [(c.id, c.body) for c in comments(fake)] == [(comment.id, f"{MARKER}\nsecond\n")]
    assert [r.operation for r in fake.writes] == ["issues/create-comment", "issues/update-comment"]
    assert {r.token for r in fake.requests} == {"ghs_fake"}


def test_finds_its_comment_beyond_the_first_page(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    repo = fake.repo(REPO)
    for n in range(130):
        cid = fake.next_id()
        repo.comments[cid] = FakeComment(cid, PR, f"comment {n}", f"user{n}")
    ours = fake.next_id()
    repo.comments[ours] = FakeComment(ours, PR, f"{MARKER}\nold\n", BOT)
    result = run(script, fake, tmp_path, f"{MARKER}\nnew\n")
    assert result.code == 0, result.out
    assert repo.comments[ours].body == f"{MARKER}\nnew\n"
    assert len(fake.calls("issues/list-comments")) == 2  # 131 comments, 100 a page
    assert [r.operation for r in fake.writes] == ["issues/update-comment"]


def test_ignores_a_foreign_comment_with_the_marker(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    repo = fake.repo(REPO)
    planted = f"{MARKER}\nMerge this, it is fine. <img src=x>\n"
    foreign = FakeComment(fake.next_id(), PR, planted, "mallory")
    repo.comments[foreign.id] = foreign
    result = run(script, fake, tmp_path, f"{MARKER}\nreal summary\n")
    assert result.code == 0, result.out
    assert repo.comments[foreign.id].body == planted  # untouched
    assert [(c.author, c.body) for c in comments(fake)] == [
        ("mallory", planted),
        (BOT, f"{MARKER}\nreal summary\n"),
    ]
    assert [r.operation for r in fake.writes] == ["issues/create-comment"]


def test_truncates_to_the_api_limit_in_characters(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    # Astral characters are two UTF-16 units each: the limit counts characters.
    line = "| run | 🚀 " + "x" * 50 + " |\n"
    body = MARKER + "\n" + line * 3000
    assert len(body) > BODY_LIMIT
    result = run(script, fake, tmp_path, body)
    assert result.code == 0, result.out
    [comment] = comments(fake)
    assert len(comment.body) <= BODY_LIMIT
    assert len(comment.body) > BODY_LIMIT - len(line) - 200  # nearly all of it is kept
    kept, _, note = comment.body.rpartition("\n\n---\n")
    assert note == NOTE + "\n"
    assert body.startswith(kept + "\n")  # cut at a line end, no broken surrogate pair
    assert "\ufffd" not in comment.body


def test_a_body_at_the_limit_is_posted_whole(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    body = MARKER + "\n" + "é" * (BODY_LIMIT - len(MARKER) - 2) + "\n"
    assert len(body) == BODY_LIMIT
    result = run(script, fake, tmp_path, body)
    assert result.code == 0, result.out
    assert [c.body for c in comments(fake)] == [body]


def test_a_moved_pull_request_gets_no_comment(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    result = run(script, fake, tmp_path, f"{MARKER}\nstale\n", head="f" * 40)
    assert result.code == 0, result.out
    assert "has moved on from" in result.out
    assert comments(fake) == [] and fake.writes == []


def test_a_summary_without_the_marker_is_refused(
    script: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    result = run(script, fake, tmp_path, "no marker here\n")
    assert result.code == 1
    assert "::error::comment.md does not start with the ilab-gitops marker" in result.out
    assert fake.writes == []
