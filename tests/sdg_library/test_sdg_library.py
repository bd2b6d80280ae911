"""The real instructlab-sdg behind `steps/generation.py`, against the fake teacher.

Needs the library (the `sdg` extra: docling, torch; several GB, so not in `.venv-steps`):
the module skips without it. The taxonomy holds a skill only: knowledge leaves make the
library start docling's converter, which downloads its layout models from Hugging Face
(docs/sdg.md), and the tests never reach the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("instructlab.sdg.generate_data")

from ilab_gitops.steps import generation, teacher
from ilab_gitops.steps.runtime import StepError
from tests.steps import taxonomy_repo as tr
from tests.steps.openai_fake import FakeOpenAI

ANSWER = "What is a haiku about snow?\nWhite snow on the hill\nsilent flakes fall all night\n"


def skills_only(root: Path) -> Path:
    bare = root / "t.git"
    tr.git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = root / "tw"
    tr.git(root, "clone", "-q", str(bare), str(work))
    tr.git(work, "checkout", "-q", "-b", "main")
    (work / "README.md").write_text("taxonomy\n")
    tr.git(work, "add", ".")
    tr.git(work, "commit", "-q", "-m", "base")
    tr.git(work, "push", "-q", "origin", "main")
    tr.git(work, "checkout", "-q", "-b", "pr")
    skill = work / tr.SKILL
    skill.parent.mkdir(parents=True)
    skill.write_text(tr._skill_qna())
    tr.git(work, "add", ".")
    tr.git(work, "commit", "-q", "-m", "pr")
    return work


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        return ANSWER

    with FakeOpenAI(reply, api_key="k") as server:
        server.text_completions = True
        server.models = ["teacher-model"]
        yield server


def request(tmp_path: Path, url: str, taxonomy: Path) -> generation.Request:
    return generation.Request(
        teacher=teacher.Teacher(url, "teacher-model", "k"),
        ca_bundle=None,
        taxonomy=taxonomy,
        base_branch="main",
        output=tmp_path / "data",
        work=tmp_path / "work",
        pipeline="simple",
        num_instructions=2,
        batch_size=4,
        num_workers=1,
        timeout_s=10,
    )


def test_skills_leaf_generates_skills_messages(tmp_path: Path, fake: FakeOpenAI) -> None:
    req = request(tmp_path, fake.url, skills_only(tmp_path))
    with pytest.raises(StepError, match="no knowledge_train_msgs file: phase 1 of training"):
        generation.generate(req)
    (skills,) = sorted((tmp_path / "data").glob("skills_train_msgs_*.jsonl"))
    rows = [json.loads(line) for line in skills.read_text().splitlines()]
    assert rows and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    assert any("White snow on the hill" in r["messages"][-1]["content"] for r in rows)
    bodies = [r["body"] for r in fake.requests if r["path"] == "/v1/completions"]
    assert bodies and all(b["model"] == "teacher-model" for b in bodies)
    assert any("haiku" in str(b["prompt"]) for b in bodies)


def test_teacher_error_during_generation_is_one_line(tmp_path: Path) -> None:
    with FakeOpenAI(lambda m, msgs: ANSWER, api_key="k") as server:  # no completions route
        req = request(tmp_path, server.url, skills_only(tmp_path))
        with pytest.raises(StepError) as err:
            generation.generate(req)
    text = str(err.value)
    assert text.startswith(f"teacher {server.url}") and "\n" not in text
    assert "HTTP 404" in text
