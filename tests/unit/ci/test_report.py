from __future__ import annotations

from ilab_gitops.results.ports import RateLimited
from ilab_gitops.results.report import format_report
from ilab_gitops.results.sync import RunReport, SyncReport


def _report() -> SyncReport:
    return SyncReport(
        runs=[
            RunReport(
                "a",
                "reported",
                actions=["commented on o/t#1"],
                notes=["#2: pull request not found in o/t; skipped"],
            ),
            RunReport("b", "pending", notes=["no results yet at s3://b/k"]),
            RunReport("c", "deferred", problems=["GitHub rate limit: GitHub API 403: slow\ndown"]),
        ],
        rate_limited=RateLimited("slow", 403, 60.0),
    )


def test_text_report() -> None:
    assert format_report(_report()) == (
        "a: reported\n"
        "  commented on o/t#1\n"
        "  note: #2: pull request not found in o/t; skipped\n"
        "b: pending (no results yet at s3://b/k)\n"
        "c: deferred\n"
        "  error: GitHub rate limit: GitHub API 403: slow\\x0adown\n"
        "results sync: 1 reported, 1 pending, 1 deferred; GitHub rate limit reached "
        "(retry after 60 s); the next sync retries what is left\n"
    )


def test_github_report_uses_annotations() -> None:
    text = format_report(_report(), "github")
    assert "::notice title=ilab-gitops results sync (a)::#2: pull request not found" in text
    assert (
        "::error title=ilab-gitops results sync (c)::GitHub rate limit: GitHub API 403: "
        "slow\\x0adown\n"
    ) in text


def test_nothing_to_do() -> None:
    assert format_report(SyncReport()) == "results sync: no runs\n"
