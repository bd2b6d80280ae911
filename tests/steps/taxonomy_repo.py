"""A small real taxonomy repository for the SDG tests: a bare remote with `main` and a PR.

`main` holds a README and an unrelated skill; the PR commit adds one knowledge leaf
(qna.yaml whose document lives in a second local repository, as taxonomy v3 has it) and one
freeform skill. Everything is real git on local paths; nothing reaches the network.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
    "HOME": "/nonexistent",
}

KNOWLEDGE = "knowledge/science/astronomy/moons/qna.yaml"
SKILL = "compositional_skills/writing/haiku/qna.yaml"

DOCUMENT = """# Moons of the outer planets

Jupiter has four large moons discovered by Galileo: Io, Europa, Ganymede and Callisto.
Ganymede is the largest moon in the solar system and is bigger than the planet Mercury.
Saturn's largest moon, Titan, has a thick nitrogen atmosphere and lakes of liquid methane.
Europa is covered by a shell of water ice with a liquid ocean underneath.
Io is the most volcanically active body in the solar system because of tidal heating.
"""


def _knowledge_qna(doc_repo: str, doc_commit: str) -> str:
    examples = []
    for i in range(5):
        pairs = "\n".join(
            f"      - question: Which moon fact number {i}-{j}?\n"
            f"        answer: Ganymede is the largest moon, fact {i}-{j}."
            for j in range(3)
        )
        examples.append(
            "  - context: |\n"
            "      Jupiter has four large moons discovered by Galileo: Io, Europa, Ganymede and\n"
            f"      Callisto. Ganymede is the largest moon in the solar system (part {i}).\n"
            f"    questions_and_answers:\n{pairs}\n"
        )
    return (
        "version: 3\n"
        "created_by: tester\n"
        "domain: astronomy\n"
        "document_outline: Facts about the large moons of Jupiter and Saturn\n"
        "seed_examples:\n" + "".join(examples) + "document:\n"
        f"  repo: {doc_repo}\n"
        f"  commit: {doc_commit}\n"
        "  patterns:\n"
        "    - moons.md\n"
    )


def _skill_qna() -> str:
    examples = "".join(
        f"  - question: Write a haiku about topic {i}.\n"
        f"    answer: |\n      Quiet topic {i}\n      morning light on still water\n"
        "      a frog jumps, then calm\n"
        for i in range(5)
    )
    return (
        "version: 2\ncreated_by: tester\ntask_description: Write haiku.\nseed_examples:\n"
        + examples
    )


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class TaxonomyRepo:
    url: str  # the bare remote (a local path)
    commit: str  # the PR's head: what the run names
    base: str  # main's head


def make_taxonomy(root: Path) -> TaxonomyRepo:
    docs = root / "docs-work"
    docs.mkdir(parents=True)
    git(docs, "init", "-q", "-b", "main")
    (docs / "moons.md").write_text(DOCUMENT, encoding="utf-8")
    git(docs, "add", ".")
    git(docs, "commit", "-q", "-m", "doc")
    doc_commit = git(docs, "rev-parse", "HEAD")

    bare = root / "taxonomy.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = root / "taxonomy-work"
    git(root, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / "README.md").write_text("taxonomy\n")
    other = work / "compositional_skills" / "other"
    other.mkdir(parents=True)
    (other / "qna.yaml").write_text(_skill_qna(), encoding="utf-8")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "base")
    git(work, "push", "-q", "origin", "main")
    base = git(work, "rev-parse", "HEAD")

    git(work, "checkout", "-q", "-b", "pr-17")
    knowledge = work / KNOWLEDGE
    knowledge.parent.mkdir(parents=True)
    knowledge.write_text(_knowledge_qna(str(docs), doc_commit), encoding="utf-8")
    skill = work / SKILL
    skill.parent.mkdir(parents=True)
    skill.write_text(_skill_qna(), encoding="utf-8")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "PR 17: moons knowledge and a haiku skill")
    git(work, "push", "-q", "origin", "pr-17")
    return TaxonomyRepo(url=str(bare), commit=git(work, "rev-parse", "HEAD"), base=base)
