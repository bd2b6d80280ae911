"""`ilab-gitops results sync` and `ilab-gitops changelog RUN`.

Run by the runs repo's ilab-results-sync workflow (scheduled and on demand). The cluster
holds no GitHub credentials: the workflow reads results.json with read-only storage keys
and does the GitHub side.

Settings from the environment (secrets never appear as flags):
  ILAB_RESULTS_S3_BUCKET, ILAB_RESULTS_S3_ACCESS_KEY, ILAB_RESULTS_S3_SECRET_KEY,
  ILAB_RESULTS_S3_ENDPOINT, ILAB_RESULTS_S3_REGION, ILAB_RESULTS_S3_VERIFY_TLS
                         the output store, read-only keys (the cluster's output Secret may
                         hold write keys; give the workflow its own read-only ones)
  GITHUB_TOKEN           runs repo: releases (contents: write); push uses the checkout
  ILAB_TAXONOMY_TOKEN    taxonomy repo: comments and labels (pull-requests: write, issues:
                         write); defaults to GITHUB_TOKEN when the PRs live in the runs repo
  ILAB_COMMENT_AUTHOR    the login of that token (--comment-author); looked up with
                         GET /user when unset, which a GitHub App installation token cannot
                         do: set it to `<app-slug>[bot]` then. Under GitHub Actions without
                         ILAB_TAXONOMY_TOKEN the comments are posted with the workflow's
                         token, so the default is github-actions[bot]

Exit codes: 0 everything reported (or nothing to do), 1 some work failed or was deferred
(the next sync retries it), 2 invalid input or settings, 3 internal error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ilab_gitops.cli.formats import FormatOption, OutputFormat, resolve
from ilab_gitops.ghtext import line

if TYPE_CHECKING:
    from ilab_gitops.load.workspace import Workspace
    from ilab_gitops.results.locations import Links
    from ilab_gitops.results.model import RunResults
    from ilab_gitops.results.ports import PullRequest
    from ilab_gitops.results.sync import SyncReport, Target

EXIT_OK, EXIT_INCOMPLETE, EXIT_INVALID = 0, 1, 2
DEFAULT_AUTHOR = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
#: Who comments with a workflow's GITHUB_TOKEN (an installation token: GET /user is refused).
ACTIONS_LOGIN = "github-actions[bot]"


Paths = Annotated[
    list[Path] | None,
    typer.Argument(help="Run spec files or directories (default: runs).", show_default=False),
]
EnvironmentsOption = Annotated[
    Path, typer.Option("--environments", "-e", help="Directory of Environment profiles.")
]
RepoOption = Annotated[
    Path, typer.Option("--repo", help="Checkout of the runs repo (results/, CHANGELOG.md).")
]
RunsRepoOption = Annotated[
    str,
    typer.Option(
        "--runs-repo", envvar="GITHUB_REPOSITORY", help="The runs repo on GitHub, OWNER/NAME."
    ),
]
ApiUrlOption = Annotated[
    str, typer.Option("--github-api-url", envvar="GITHUB_API_URL", help="GitHub REST API URL.")
]
ServerUrlOption = Annotated[
    str,
    typer.Option("--github-server-url", envvar="GITHUB_SERVER_URL", help="GitHub web URL."),
]
BranchOption = Annotated[str, typer.Option("--branch", help="Branch of the runs repo.")]
RenderedOption = Annotated[
    str, typer.Option("--rendered", help="Folder of rendered runs (for links).")
]


def _in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _fail(message: str) -> typer.Exit:
    typer.echo(line(f"ilab-gitops: {message}"), err=True)
    return typer.Exit(EXIT_INVALID)


def _load(paths: list[Path] | None, environments: Path) -> Workspace:
    from ilab_gitops.diagnostics import format_diagnostics
    from ilab_gitops.load.workspace import load_workspace

    ws = load_workspace(paths or [Path("runs")], environments)
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    sys.stderr.write(format_diagnostics(ws.diagnostics, "github" if github else "text"))
    return ws


def _targets(ws: Workspace, server_url: str) -> tuple[list[Target], list[str]]:
    from ilab_gitops.results.locations import SettingsError, repo_from_url, results_key
    from ilab_gitops.results.sync import Target

    targets, problems = [], []
    for loaded in ws.runs:
        run = loaded.run
        try:
            taxonomy = repo_from_url(run.spec.taxonomy.repoUrl, server_url)
        except SettingsError as err:
            problems.append(f"{loaded.document.path}: spec.taxonomy.repoUrl: {err}")
            continue
        github = run.spec.publish.github
        targets.append(
            Target(
                run=run.metadata.name,
                key=results_key(run, loaded.environment),
                taxonomy_repo=taxonomy,
                comment=github.commentOnPullRequests,
                release=github.createRelease,
            )
        )
    return targets, problems


def _author(text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("<")
    if not sep or not rest.endswith(">") or not name.strip():
        raise _fail(f'--git-author must look like "Name <email>", got {text!r}')
    return name.strip(), rest[:-1].strip()


def sync_command(
    paths: Paths = None,
    environments: EnvironmentsOption = Path("environments"),
    repo: RepoOption = Path("."),
    runs_repo: RunsRepoOption = "",
    branch: BranchOption = "main",
    remote: Annotated[str, typer.Option("--remote", help="Git remote to push to.")] = "origin",
    api_url: ApiUrlOption = "https://api.github.com",
    server_url: ServerUrlOption = "https://github.com",
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Label to add to each reported PR (repeatable)."),
    ] = None,
    comment_author: Annotated[
        str | None,
        typer.Option(
            "--comment-author",
            envvar="ILAB_COMMENT_AUTHOR",
            help="Login that posts the results comments (only its marked comments are edited);"
            " default: the taxonomy token's login (GET /user). Set it for a GitHub App"
            " installation token, e.g. my-app[bot].",
        ),
    ] = None,
    rendered: RenderedOption = "rendered",
    git_author: Annotated[
        str, typer.Option("--git-author", help='Author of the commits, "Name <email>".')
    ] = DEFAULT_AUTHOR,
    http_retries: Annotated[
        int, typer.Option("--http-retries", min=0, max=10, help="Retries of one GitHub call.")
    ] = 2,
    throttle: Annotated[
        bool,
        typer.Option(help="Space GitHub calls as GitHub advises (0.25 s; writes 1 s)."),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read everything, write nothing; say what would.")
    ] = False,
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Report finished runs: PR comments, release, CHANGELOG.md and results/<run>.json."""
    from ilab_gitops.results.locations import Links, SettingsError, s3_settings
    from ilab_gitops.results.report import format_report
    from ilab_gitops.results.sync import RepoError, Services, SyncOptions, sync

    if not runs_repo:
        raise _fail("set --runs-repo OWNER/NAME (or GITHUB_REPOSITORY)")
    author = _author(git_author)
    try:
        settings = s3_settings(os.environ)
    except SettingsError as err:
        raise _fail(str(err)) from None
    ws = _load(paths, environments)
    targets, problems = _targets(ws, server_url)
    for problem in problems:
        typer.echo(line(f"ilab-gitops: {problem}"), err=True)

    from ilab_gitops.results.git_store import GitRunsRepo
    from ilab_gitops.results.github_api import PyGithubClient
    from ilab_gitops.results.s3_store import S3ResultsStore

    def client(token: str | None) -> PyGithubClient:
        return PyGithubClient(token, api_url, retries=http_retries, throttle=throttle)

    runs_token = os.environ.get("GITHUB_TOKEN") or None
    taxonomy_token = os.environ.get("ILAB_TAXONOMY_TOKEN") or runs_token
    if not comment_author and not os.environ.get("ILAB_TAXONOMY_TOKEN") and _in_actions():
        comment_author = ACTIONS_LOGIN  # the workflow's own token comments
    runs_github = client(runs_token)
    try:
        services = Services(
            store=S3ResultsStore(settings),
            taxonomy=runs_github if taxonomy_token == runs_token else client(taxonomy_token),
            runs_github=runs_github,
            repo=GitRunsRepo(repo, remote=remote, branch=branch, author=author),
        )
    except RepoError as err:
        raise _fail(str(err)) from None
    options = SyncOptions(
        links=Links(
            server_url,
            runs_repo,
            branch,
            rendered,
            {loaded.run.metadata.name: loaded.run.spec.environment for loaded in ws.runs},
        ),
        labels=tuple(label or ()),
        comment_author=comment_author,
        dry_run=dry_run,
    )
    report = sync(targets, services, options)
    resolved = resolve(fmt)
    if resolved == "json":
        sys.stdout.write(_report_json(report))
    else:
        sys.stderr.write(format_report(report, resolved))
    if not ws.ok or problems:
        raise typer.Exit(EXIT_INVALID)
    if not report.complete:
        raise typer.Exit(EXIT_INCOMPLETE)


def _report_json(report: SyncReport) -> str:
    """The sync report for tools: each run's status, actions, notes and problems."""
    import json

    limited = report.rate_limited
    data = {
        "complete": report.complete,
        "rateLimited": None if limited is None else {"retryAfter": limited.retry_after},
        "runs": [
            {
                "run": r.run,
                "status": r.status,
                "actions": r.actions,
                "notes": r.notes,
                "problems": r.problems,
            }
            for r in report.runs
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def changelog_command(
    run: Annotated[str, typer.Argument(help="Run name (metadata.name).")],
    results_file: Annotated[
        Path | None,
        typer.Option("--results", help="results.json to use (default: results/RUN.json)."),
    ] = None,
    repo: RepoOption = Path("."),
    paths: Annotated[
        list[Path] | None,
        typer.Option("--runs", help="Run specs, to fetch results.json from storage."),
    ] = None,
    environments: EnvironmentsOption = Path("environments"),
    runs_repo: RunsRepoOption = "",
    branch: BranchOption = "main",
    api_url: ApiUrlOption = "https://api.github.com",
    server_url: ServerUrlOption = "https://github.com",
    rendered: RenderedOption = "rendered",
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask GitHub for PR titles and authors.")
    ] = False,
) -> None:
    """Print the release notes of RUN, as `results sync` would write them."""
    from ilab_gitops.results.locations import Links, SettingsError, repo_from_url
    from ilab_gitops.results.release_notes import previous_run, release_title, render_release_notes

    if not runs_repo and not offline:
        raise _fail("set --runs-repo OWNER/NAME (or GITHUB_REPOSITORY), or pass --offline")
    history = _local_history(repo / "results")
    results, report = _current(run, results_file, history, paths, environments)
    try:
        taxonomy = repo_from_url(results.taxonomy.repoUrl, server_url)
    except SettingsError as err:
        raise _fail(str(err)) from None
    links = (
        Links(server_url, runs_repo, branch, rendered, _rendered_environment(repo / rendered, run))
        if runs_repo
        else _repo_relative_links(server_url, branch, rendered)
    )
    prs = _pull_requests(results, taxonomy, links, None if offline else api_url)
    previous = previous_run(history.values(), results)
    notes = render_release_notes(results, prs, previous, links, report=report)
    sys.stdout.write(f"# {release_title(results)}\n\n{notes}")


def _repo_relative_links(server_url: str, branch: str, rendered: str) -> Links:
    """Links for `changelog --offline` without --runs-repo: paths inside the runs repo
    (shown, not linked); pull requests still link to the taxonomy repo on `server_url`."""
    from ilab_gitops.results.locations import Links

    class RepoRelative(Links):
        def run_folder(self, run: str) -> str:
            return f"{self.rendered_dir}/{run}"

        def results_file(self, run: str) -> str:
            return f"results/{run}.json"

        def release(self, tag: str) -> str:
            return f"releases/tag/{tag}"

    return RepoRelative(server_url, "", branch, rendered)


def _local_history(folder: Path) -> dict[str, RunResults]:
    from pydantic import ValidationError

    from ilab_gitops.results.model import RunResults

    found: dict[str, RunResults] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            results = RunResults.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            continue
        found[results.run] = results
    return found


def _rendered_environment(folder: Path, run: str) -> dict[str, str]:
    """{run: environment} from the checkout's rendered/<environment>/<run>/ (links only)."""
    found = sorted(
        path.parent.name
        for path in folder.glob(f"*/{run}")
        if path.is_dir() and not path.is_symlink() and not path.parent.is_symlink()
    )
    return {run: found[0]} if len(found) == 1 else {}


def _current(
    run: str,
    results_file: Path | None,
    history: dict[str, RunResults],
    paths: list[Path] | None,
    environments: Path,
) -> tuple[RunResults, list[str]]:
    """The run's results, and the report files to link (known only from storage)."""
    from pydantic import ValidationError

    from ilab_gitops.results.model import RunResults

    if results_file is not None:
        try:
            return RunResults.model_validate_json(results_file.read_bytes()), []
        except (OSError, ValidationError) as err:
            raise _fail(f"{results_file}: {err}") from None
    if run in history:
        return history[run], []
    if paths is None:
        raise _fail(
            f"no results/{run}.json here: pass --results FILE, or --runs runs to read it"
            " from storage (ILAB_RESULTS_S3_* set)"
        )
    return _from_storage(run, paths, environments)


def _from_storage(run: str, paths: list[Path], environments: Path) -> tuple[RunResults, list[str]]:
    from pydantic import ValidationError

    from ilab_gitops.results.locations import SettingsError, results_key, s3_settings
    from ilab_gitops.results.model import RunResults
    from ilab_gitops.results.s3_store import S3ResultsStore
    from ilab_gitops.results.sync import StoreError

    ws = _load(paths, environments)
    loaded = next((r for r in ws.runs if r.run.metadata.name == run), None)
    if loaded is None:
        raise _fail(f"run {run!r} is not among the valid runs in {', '.join(map(str, paths))}")
    try:
        store = S3ResultsStore(s3_settings(os.environ))
        key = results_key(loaded.run, loaded.environment)
        raw = store.get(key)
    except (SettingsError, StoreError) as err:
        raise _fail(str(err)) from None
    if raw is None:
        raise _fail(f"no results yet at {store.uri(key)}")
    try:
        results = RunResults.model_validate_json(raw)
    except ValidationError as err:
        raise _fail(f"{store.uri(key)}: {err}") from None
    if not loaded.run.spec.publish.github.createRelease:
        return results, []
    from ilab_gitops.results import assets

    found, _, _ = assets.report_files(store, key)  # as the sync links them
    return results, list(found)


def _pull_requests(
    results: RunResults, repo: str, links: Links, api_url: str | None
) -> list[PullRequest]:
    from ilab_gitops.results.ports import GitHubError, NotFound, PullRequest

    def unknown(number: int) -> PullRequest:
        return PullRequest(repo, number, links.pull_request(repo, number))

    numbers = results.taxonomy.pullRequests
    if api_url is None:
        return [unknown(n) for n in numbers]
    from ilab_gitops.results.github_api import PyGithubClient

    token = os.environ.get("ILAB_TAXONOMY_TOKEN") or os.environ.get("GITHUB_TOKEN") or None
    client = PyGithubClient(token, api_url, retries=1, throttle=False)
    found: list[PullRequest] = []
    for number in numbers:
        try:
            found.append(client.pull_request(repo, number))
        except NotFound:
            found.append(PullRequest(repo, number, links.pull_request(repo, number), "missing"))
        except GitHubError as err:
            typer.echo(line(f"ilab-gitops: warning: #{number}: {err}"), err=True)
            found.append(unknown(number))
    return found


def register(app: typer.Typer) -> None:
    results_app = typer.Typer(
        help="Report finished runs' results on GitHub and in the runs repo.",
        no_args_is_help=True,
    )
    results_app.command("sync")(sync_command)
    app.add_typer(results_app, name="results")
    app.command("changelog")(changelog_command)
