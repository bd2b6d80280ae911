"""Release notes of a run, shared by the GitHub release, CHANGELOG.md and `ilab-gitops changelog`.

Pure: results, pull-request metadata and the previous release's results in, Markdown out.
Every string from users or data goes through `ilab_gitops.ghtext`; the one deliberate
@mention is each pull request's author.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ilab_gitops import ghtext
from ilab_gitops.results import markdown as md
from ilab_gitops.results import summary
from ilab_gitops.results.locations import Links
from ilab_gitops.results.mapping import qna_files_of
from ilab_gitops.results.model import QnaFileResult, RunResults
from ilab_gitops.results.ports import PullRequest
from ilab_gitops.results.truncate import RELEASE_BUDGET, Omitted, Section, fit


def release_tag(run: str) -> str:
    """The runs-repo tag (and release) of a run: its name, unique in the repo."""
    return run


def release_title(results: RunResults) -> str:
    return f"{results.run} ({summary.finished_date(results)})"


def previous_run(history: Iterable[RunResults], current: RunResults) -> RunResults | None:
    """The latest other run that finished before `current` (ties broken by name)."""
    key = finish_order(current)
    earlier = [r for r in history if r.run != current.run and finish_order(r) < key]
    return max(earlier, key=finish_order, default=None)


def finish_order(results: RunResults) -> tuple[datetime, str]:
    return datetime.fromisoformat(results.finishedAt.replace("Z", "+00:00")), results.run


def render_release_notes(
    results: RunResults,
    prs: Sequence[PullRequest],
    previous: RunResults | None,
    links: Links,
    budget: int = RELEASE_BUDGET,
    *,
    report: Sequence[str] = (),
) -> str:
    """The release body: models, score changes, the pull requests, per-file scores; `report`:
    the report files attached to the release, linked."""
    tax = results.taxonomy
    head = [
        *summary.model_lines(results),
        f"- **Taxonomy:** {ghtext.link(tax.commit[:12], _tree_url(tax.repoUrl, tax.commit))} "
        f"compared with {ghtext.code(tax.baseBranch)}",
        f"- **Finished:** {ghtext.text(results.finishedAt)}"
        f" · {ghtext.link('run', links.run_folder(results.run))}"
        f" · {ghtext.link('results', links.results_file(results.run))}",
        *summary.report_line(results.run, report, links),
        "",
        "### Scores",
        "",
        *md.table(_score_header(previous), "lrrrrr", _score_rows(results, previous)),
    ]
    sections = [_pr_section(prs)] if prs else []
    files = _file_rows(results.qnaFiles, prs)
    if files:
        heading = (
            "\n### Scores per qna.yaml\n\n"
            + "\n".join(
                md.table(["File", "Pull request", "MT-Bench-Branch", "MMLU-Branch"], "llll", [])
            )
            + "\n"
        )
        sections.append(Section(heading, files))
    if not prs:
        head += ["", "No taxonomy pull requests are listed for this run."]

    everything = ghtext.link(f"results/{results.run}.json", links.results_file(results.run))

    def note(omitted: Omitted) -> str:
        return (
            f"\n_Shortened to stay under GitHub's size limit: {omitted.rows} more line(s) not "
            f"shown. Everything is in {everything}._\n"
        )

    return fit("\n".join(head) + "\n", sections, "", budget, note)


def _tree_url(repo_url: str, commit: str) -> str:
    return f"{repo_url.rstrip('/').removesuffix('.git')}/tree/{commit}"


def _score_header(previous: RunResults | None) -> list[str]:
    shown = ghtext.code(previous.run, cell=True) if previous else "none"
    return [
        "Benchmark",
        "Base",
        "Candidate",
        "Δ vs base",
        f"Previous release ({shown})",
        "Δ vs previous",
    ]


def _score_rows(results: RunResults, previous: RunResults | None) -> list[list[str]]:
    mt, mmlu = results.mtBenchBranch, results.mmluBranch

    def row(
        name: str, base: float | None, now: float, before: float | None, digits: int
    ) -> list[str]:
        return [
            name,
            md.score(base, digits),
            md.score(now, digits),
            md.delta(base, now, digits),
            md.score(before, digits),
            md.delta(before, now, digits),
        ]

    return [
        row(
            "MT-Bench (best checkpoint)",
            None,
            results.mtBench.bestScore,
            previous.mtBench.bestScore if previous else None,
            summary.MT_DIGITS,
        ),
        row(
            "MT-Bench-Branch",
            mt.base,
            mt.candidate,
            previous.mtBenchBranch.candidate if previous else None,
            summary.MT_DIGITS,
        ),
    ] + (
        [
            row(
                "MMLU-Branch",
                mmlu.base,
                mmlu.candidate,
                previous.mmluBranch.candidate if previous and previous.mmluBranch else None,
                summary.MMLU_DIGITS,
            )
        ]
        if mmlu is not None
        else []
    )


def _pr_section(prs: Sequence[PullRequest]) -> Section:
    rows = [f"- {_pr_line(pr)}\n" for pr in prs]
    return Section(f"\n### Taxonomy pull requests ({len(prs)})\n\n", rows)


def _pr_ref(pr: PullRequest) -> str:
    """`#N` linking to the pull request (the URL comes from GitHub or from our own links)."""
    url = ghtext.safe_url(pr.url)
    return f"[#{pr.number}]({url})" if url else f"#{ghtext.ZWSP}{pr.number}"


def _pr_line(pr: PullRequest) -> str:
    ref = _pr_ref(pr)
    if pr.state == "missing":
        return f"{ref} (no longer on GitHub)"
    if pr.title is None:
        return ref
    by = f" by {ghtext.mention(pr.author)}" if pr.author else ""
    state = "" if pr.state in ("merged", "unknown") else f" ({pr.state})"
    return f"{ref} {ghtext.text(pr.title, 200)}{by}{state}"


def _file_rows(files: Sequence[QnaFileResult], prs: Sequence[PullRequest]) -> list[str]:
    owners: dict[str, list[str]] = {}
    for pr in prs:
        for result in qna_files_of(pr.files, files):
            owners.setdefault(result.path, []).append(_pr_ref(pr))
    rows = []
    for result in files:
        numbers = ", ".join(owners.get(result.path, [])) or "—"
        mt = _arrow(result.mtBenchBranchBase, result.mtBenchBranchCandidate, summary.MT_DIGITS)
        mmlu = _arrow(result.mmluBranchBase, result.mmluBranchCandidate, summary.MMLU_DIGITS)
        rows.append(f"| {ghtext.code(result.path, cell=True)} | {numbers} | {mt} | {mmlu} |\n")
    return rows


def _arrow(before: float | None, after: float | None, digits: int) -> str:
    return md.change(before, after, digits)
