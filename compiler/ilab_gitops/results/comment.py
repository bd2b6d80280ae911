"""The comment posted on each taxonomy pull request of a run (pure).

One comment per (run, pull request), found again by its author (the sync's identity) and the
hidden marker on its first line, so a later sync edits it in place instead of posting
another. Every string from users or data goes through `ilab_gitops.ghtext`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ilab_gitops import ghtext
from ilab_gitops.results import markdown as md
from ilab_gitops.results import summary
from ilab_gitops.results.locations import Links
from ilab_gitops.results.mapping import qna_files_of
from ilab_gitops.results.model import QnaFileResult, RunResults
from ilab_gitops.results.ports import PullRequest
from ilab_gitops.results.truncate import COMMENT_BUDGET, Omitted, Section, fit

_MARKER = "<!-- ilab-gitops:results run={run} -->"


def marker(run: str) -> str:
    """The hidden first line that identifies the comment of `run`."""
    return _MARKER.format(run=run)


def is_marked(body: str, run: str) -> bool:
    return body.startswith(marker(run) + "\n") or body == marker(run)


def render_comment(
    results: RunResults,
    pr: PullRequest,
    links: Links,
    budget: int = COMMENT_BUDGET,
    *,
    report: Sequence[str] = (),
) -> str:
    """The comment for `pr`, at most `budget` UTF-8 bytes; `report`: the report files
    attached to the run's release, linked."""
    run = results.run
    files = qna_files_of(pr.files, results.qnaFiles)
    head = [
        marker(run),
        f"### InstructLab run {ghtext.code(run)}: results for this pull request",
        "",
        f"This pull request is one of {len(results.taxonomy.pullRequests)} taxonomy pull "
        f"request(s) trained into run {ghtext.link(run, links.run_folder(run))}, "
        f"finished {summary.finished_date(results)}.",
        "",
        *summary.model_lines(results),
        f"- **Run:** {ghtext.link('rendered manifests', links.run_folder(run))} · "
        f"{ghtext.link('all results', links.results_file(run))}",
        *summary.report_line(run, report, links),
        "",
        *md.table(["Whole run", "Base", "Candidate", "Δ"], "lrrr", summary.overall_rows(results)),
        "",
    ]
    if files:
        head.append(f"#### Questions from the {len(files)} qna.yaml file(s) of this pull request")
    else:
        head.append(
            "No qna.yaml file changed by this pull request has scores in this run's results."
        )
    tail = (
        "\n<sub>Posted by <code>ilab-gitops results sync</code>; "
        "edited in place when the run's results change.</sub>\n"
    )
    everything = ghtext.link(f"results/{run}.json", links.results_file(run))

    def note(omitted: Omitted) -> str:
        whole = f", including {omitted.sections} whole file(s)" if omitted.sections else ""
        return (
            f"\n_Shortened to stay under GitHub's comment size limit: {omitted.rows} more "
            f"row(s) not shown{whole}. All scores are in {everything}._\n"
        )

    return fit("\n".join(head) + "\n", [_section(f) for f in files], tail, budget, note)


def _section(result: QnaFileResult) -> Section:
    mt = (result.mtBenchBranchBase, result.mtBenchBranchCandidate)
    mmlu = (result.mmluBranchBase, result.mmluBranchCandidate)
    line = (
        f"MT-Bench-Branch {_change(*mt, summary.MT_DIGITS)} · "
        f"MMLU-Branch {_change(*mmlu, summary.MMLU_DIGITS)}\n"
    )
    if not result.questions:
        return Section(f"\n##### {ghtext.code(result.path)}\n\n", [line])
    header = "\n".join(md.table(["#", "Question", "Base", "Candidate", "Δ"], "rlrrr", [])) + "\n"
    rows = [
        "| "
        + " | ".join(
            [
                str(q.questionId),
                ghtext.text(q.question),
                md.score(q.baseScore, summary.MT_DIGITS),
                md.score(q.candidateScore, summary.MT_DIGITS),
                md.delta(q.baseScore, q.candidateScore, summary.MT_DIGITS),
            ]
        )
        + " |\n"
        for q in result.questions
    ]
    rows[0] = line + "\n" + header + rows[0]
    return Section(f"\n##### {ghtext.code(result.path)}\n\n", rows)


def _change(before: float | None, after: float | None, digits: int) -> str:
    return md.change(before, after, digits)
