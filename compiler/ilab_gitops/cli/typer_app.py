"""The `ilab-gitops` command line: the only module that prints or exits.

Exit codes: 0 ok, 1 differences found (`render --check`), 2 invalid input or usage,
3 internal error (one line; the traceback only with `--debug`).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ilab_gitops import __version__

if TYPE_CHECKING:
    from ilab_gitops.diagnostics import Diagnostic
    from ilab_gitops.manifests.model import K8sObject
    from ilab_gitops.spec.environment import Environment

from ilab_gitops.cli.core import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK
from ilab_gitops.cli.formats import FormatOption, OutputFormat

app = typer.Typer(
    name="ilab-gitops",
    help="Validate InstructLab PipelineRun specs and compile them into GitOps manifests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
bootstrap_app = typer.Typer(
    help="Print the one-time cluster configuration for a GitOps engine.", no_args_is_help=True
)
app.add_typer(bootstrap_app, name="bootstrap")


_state = {"debug": False}

EnvironmentsOption = Annotated[
    Path,
    typer.Option(
        "--environments", "-e", help="Directory of Environment profiles.", show_default=True
    ),
]


def _report(diagnostics: Sequence[Diagnostic], fmt: OutputFormat) -> None:
    from ilab_gitops.cli.core import report

    report(diagnostics, fmt.value)


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
) -> None:
    _state["debug"] = debug
    if version:
        typer.echo(f"ilab-gitops {__version__}")
        raise typer.Exit(EXIT_OK)
    if ctx.invoked_subcommand is None:  # e.g. `ilab-gitops --debug` alone: usage, exit 2
        typer.echo(f"{ctx.get_usage()}\nTry 'ilab-gitops --help' for help.\n", err=True)
        typer.echo("Error: Missing command.", err=True)
        raise typer.Exit(EXIT_INVALID)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Spec files or directories.")],
    environments: EnvironmentsOption = Path("environments"),
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Check PipelineRun and Environment files; report every problem with file:line:col."""
    from ilab_gitops.cli import core

    raise typer.Exit(core.validate(paths, environments, fmt.value))


@app.command()
def render(
    runs: Annotated[list[Path], typer.Argument(help="Run spec files or directories.")],
    environments: EnvironmentsOption = Path("environments"),
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output directory, or - for one YAML stream.")
    ] = "rendered",
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the tree on disk differs.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove rendered runs that have no spec any more.")
    ] = False,
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Compile runs into rendered/<environment>/<run>/, one folder per step, atomically."""
    from ilab_gitops.cli import core

    raise typer.Exit(core.render(runs, environments, out, check=check, prune=prune, fmt=fmt.value))


class SchemaKind(StrEnum):
    pipelinerun = "pipelinerun"
    environment = "environment"
    results = "results"


@app.command()
def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="Which schema.")] = SchemaKind.pipelinerun,
) -> None:
    """Print the JSON Schema of a spec kind (editors and CI can validate with it)."""
    from ilab_gitops.spec.schema import json_schemas

    sys.stdout.write(json_schemas()[f"{kind.value}.schema.json"])


# Command modules register themselves here, one line each (keep this block sorted).
# --- command registrations ---
from ilab_gitops.cli import doctor as _doctor  # noqa: E402

_doctor.register(app)
from ilab_gitops.cli import repo as _repo  # noqa: E402

_repo.register(app)
from ilab_gitops.cli import report as _report_command  # noqa: E402

_report_command.register(app)
from ilab_gitops.cli import results as _results  # noqa: E402

_results.register(app)
from ilab_gitops.cli import status as _status  # noqa: E402

_status.register(app)
# --- end of command registrations ---


RepoUrlOption = Annotated[
    str, typer.Option("--repo-url", help="URL of the runs repository the engine reads.")
]
EnvironmentNameOption = Annotated[
    str | None,
    typer.Option(
        "--environment",
        help="Profile whose namespace and Flux settings to use (default: the only one).",
    ),
]


def _pick_environment(
    environments: Path, name: str | None, fmt: OutputFormat, engine: str
) -> Environment:
    """The Environment the bootstrap is for; exits 2 with a clear message when it is
    ambiguous, unknown, or not applied by `engine` (as `init` refuses it)."""
    from ilab_gitops.ghtext import line
    from ilab_gitops.load.workspace import load_workspace

    ws = load_workspace([], environments)
    _report(ws.diagnostics, fmt)
    if not ws.ok:
        raise typer.Exit(EXIT_INVALID)
    known = sorted(ws.environments)
    folder = environments.as_posix().rstrip("/") + "/"
    listed = f"({', '.join(known)})" if known else "(none)"
    problem: str | None = None
    chosen: Environment | None = None
    if name is None and len(known) == 1:
        name = known[0]
    if name is None:
        problem = f"{folder} holds {len(known)} profiles {listed}; pass --environment NAME"
    elif name not in ws.environments:
        problem = f'no profile "{name}" in {folder}; it holds {len(known)} {listed}'
    else:
        chosen = ws.environments[name][1]
        if engine not in chosen.spec.engines:
            problem = (
                f'environment "{name}" is not applied by {engine} '
                f"(its spec.engines: {', '.join(chosen.spec.engines)}); "
                "pick another --environment"
            )
    if problem is not None or chosen is None:
        typer.echo(line(f"ilab-gitops bootstrap {engine}: {problem}"), err=True)
        raise typer.Exit(EXIT_INVALID)
    return chosen


def _cluster_needs(env: Environment) -> list[K8sObject]:
    """Cluster-scoped objects the runs reference: the Trainer v2 runtime of a TrainJob
    environment, for the platform owner to apply once."""
    if env.spec.trainingKind != "TrainJob":
        return []
    from ilab_gitops.manifests.trainjob import cluster_training_runtime

    return [cluster_training_runtime(env)]


@bootstrap_app.command("argocd")
def bootstrap_argocd(
    repo_url: RepoUrlOption,
    environment: EnvironmentNameOption = None,
    environments: EnvironmentsOption = Path("environments"),
    revision: Annotated[str, typer.Option(help="Branch Argo CD follows.")] = "main",
    argocd_namespace: Annotated[str, typer.Option(help="Namespace of Argo CD.")] = "argocd",
    project: Annotated[str, typer.Option(help="AppProject to create.")] = "ilab-runs",
    rendered_path: Annotated[str, typer.Option(help="Rendered folder in the repo.")] = "rendered",
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Print the Argo CD setup: health checks (argocd-cm), AppProject, ApplicationSet (and a
    TrainJob profile's ClusterTrainingRuntime)."""
    from ilab_gitops.emit import yaml_emit
    from ilab_gitops.engines.bootstrap import argocd_bootstrap

    env = _pick_environment(environments, environment, fmt, "argocd")
    objects = argocd_bootstrap(
        repo_url,
        revision=revision,
        rendered_path=rendered_path,
        namespace=env.spec.namespace,
        argocd_namespace=argocd_namespace,
        project=project,
        environment=env.metadata.name,
        progress=env.spec.commitStatusProgress,
    )
    sys.stdout.write(yaml_emit.dump_all([*objects, *_cluster_needs(env)]))


@bootstrap_app.command("flux")
def bootstrap_flux(
    repo_url: RepoUrlOption,
    environment: EnvironmentNameOption = None,
    environments: EnvironmentsOption = Path("environments"),
    branch: Annotated[str, typer.Option(help="Branch Flux follows.")] = "main",
    fmt: FormatOption = OutputFormat.auto,
) -> None:
    """Print the Flux setup: the GitRepository and the parent Kustomization of all runs (and a
    TrainJob profile's ClusterTrainingRuntime)."""
    from ilab_gitops.emit import yaml_emit
    from ilab_gitops.engines.bootstrap import flux_bootstrap

    env = _pick_environment(environments, environment, fmt, "flux")
    flux = env.spec.flux
    objects = flux_bootstrap(
        repo_url,
        branch=branch,
        rendered_path=flux.renderedPath,
        namespace=flux.namespace,
        source_name=flux.sourceName,
        environment=env.metadata.name,
        progress_namespace=env.spec.namespace if env.spec.commitStatusProgress else None,
    )
    sys.stdout.write(yaml_emit.dump_all([*objects, *_cluster_needs(env)]))


def _internal(err: BaseException) -> None:
    if _state["debug"] or "--debug" in sys.argv:
        traceback.print_exc()
    sys.stderr.write(f"ilab-gitops: internal error: {type(err).__name__}: {err}\n")


def main() -> None:
    """Console entry point: maps every outcome to the exit-code contract."""
    try:
        code = app(standalone_mode=False)
    except typer.Exit as done:
        code = done.exit_code
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("ilab-gitops: aborted\n")
        code = 130
    except ModuleNotFoundError as err:
        from ilab_gitops.cli.extras import missing_extra

        message = missing_extra(err)
        if message is None:
            _internal(err)
            code = EXIT_INTERNAL
        else:
            sys.stderr.write(f"ilab-gitops: {message}\n")
            code = EXIT_INVALID
    except Exception as err:
        # Usage errors (the CLI framework's own exceptions) know how to show themselves.
        show = getattr(err, "show", None)
        if callable(show) and isinstance(getattr(err, "exit_code", None), int):
            show()
            sys.exit(EXIT_INVALID)
        _internal(err)
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
