"""The model card (README.md) published with the candidate: what went in, how it scored.

Built only from results.json's model, so the card and results.json cannot disagree. The
text is deterministic for given results (no clock beyond `finishedAt`).
"""

from __future__ import annotations

from ilab_gitops.results.model import BranchScores, RunResults


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _delta(scores: BranchScores) -> str:
    return f"{scores.delta:+.3f}"


def _hub_repo(base: str) -> str | None:
    """The Hub repo id of a base model named `repo@revision`; None for S3/PVC models."""
    repo = base.split("@", 1)[0]
    return repo if repo.count("/") == 1 and ":" not in repo else None


def render(results: RunResults, changelog: str | None = None) -> str:
    repo_url = results.taxonomy.repoUrl.removesuffix(".git").rstrip("/")
    hub_base = _hub_repo(results.baseModel)
    lines = [
        "---",
        *([f"base_model: {hub_base}"] if hub_base else []),
        "tags:",
        "- instructlab",
        "- ilab-gitops",
        "---",
        "",
        f"# {results.run}",
        "",
        f"Fine-tuned with InstructLab from `{results.baseModel}` on the taxonomy at "
        f"[`{results.taxonomy.commit[:12]}`]({repo_url}/tree/{results.taxonomy.commit}).",
        "",
        "## Taxonomy pull requests",
        "",
    ]
    if results.taxonomy.pullRequests:
        lines += [f"- [#{n}]({repo_url}/pull/{n})" for n in results.taxonomy.pullRequests]
    else:
        lines.append("- none")
    lines += [
        "",
        "## Evaluation",
        "",
        "| benchmark | base | candidate | delta |",
        "| --- | --- | --- | --- |",
        f"| MT-Bench-Branch | {_fmt(results.mtBenchBranch.base)} | "
        f"{_fmt(results.mtBenchBranch.candidate)} | {_delta(results.mtBenchBranch)} |",
        (
            f"| MMLU-Branch | {_fmt(results.mmluBranch.base)} | "
            f"{_fmt(results.mmluBranch.candidate)} | {_delta(results.mmluBranch)} |"
            if results.mmluBranch is not None
            else "| MMLU-Branch | n/a | n/a | no knowledge data in this run |"
        ),
        "",
        f"MT-Bench of the chosen checkpoint `{results.mtBench.bestCheckpoint}`: "
        f"{_fmt(results.mtBench.bestScore)} (all checkpoints: "
        + ", ".join(f"{c.checkpoint} {_fmt(c.score)}" for c in results.mtBench.checkpoints)
        + ").",
        "",
        "### Per taxonomy file",
        "",
        "| qna.yaml | MT-Bench-Branch base | candidate |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| `{q.path}` | {_fmt(q.mtBenchBranchBase)} | {_fmt(q.mtBenchBranchCandidate)} |"
        for q in results.qnaFiles
    ]
    lines += ["", "## Changelog", ""]
    lines += (
        [changelog.strip()]
        if changelog
        else [
            f"- Run `{results.run}` on `{results.cluster}/{results.namespace}`, finished "
            f"{results.finishedAt}.",
            f"- Taxonomy `{results.taxonomy.commit}` "
            f"(base branch `{results.taxonomy.baseBranch}`).",
            f"- Candidate checkpoint `{results.candidateCheckpoint}`; artifacts at "
            f"`{results.model.s3Uri}`.",
        ]
    )
    return "\n".join(lines) + "\n"
