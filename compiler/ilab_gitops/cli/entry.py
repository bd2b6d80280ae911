"""The `ilab-gitops` console script: a typer-free fast path for `validate` and `render`.

Those two run on every PR, every push and every Argo CD plugin sync, often on one spec, so
start-up time is most of their cost, and importing typer (and building its command tree) is
the largest part of it. Plain invocations of the two are parsed here and run directly;
anything else (help, other commands, unusual or invalid arguments) goes to the typer app,
which therefore remains the single source of usage messages. Set ILAB_GITOPS_NO_FASTPATH=1
to always use typer.
"""

from __future__ import annotations

import gc
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from ilab_gitops.cli import core

_VALUE_OPTIONS = {
    "validate": {
        "--environments": "environments",
        "-e": "environments",
        "--format": "fmt",
        "-f": "fmt",
    },
    "render": {
        "--environments": "environments",
        "-e": "environments",
        "--format": "fmt",
        "-f": "fmt",
        "--out": "out",
        "-o": "out",
    },
}
_FLAGS = {"validate": {}, "render": {"--check": "check", "--prune": "prune"}}


@dataclass
class Invocation:
    """A plain `validate` or `render` command line."""

    command: str
    paths: list[Path] = field(default_factory=list)
    environments: Path = Path("environments")
    fmt: core.FormatChoice = "auto"
    out: str = "rendered"
    check: bool = False
    prune: bool = False
    debug: bool = False


def parse(argv: list[str]) -> Invocation | None:
    """The invocation, or None when anything is not plainly understood (typer decides)."""
    debug = False
    if argv[:1] == ["--debug"]:
        debug, argv = True, argv[1:]
    if not argv or argv[0] not in _VALUE_OPTIONS:
        return None
    found = Invocation(argv[0], debug=debug)
    values, flags = _VALUE_OPTIONS[found.command], _FLAGS[found.command]
    tokens = iter(argv[1:])
    for token in tokens:
        name, _, inline = token.partition("=")
        if token in flags:
            setattr(found, flags[token], True)
        elif name in values and (inline or "=" not in token):
            value = inline if "=" in token else next(tokens, None)
            if value is None or value == "" or (value.startswith("-") and value != "-"):
                return None
            if not _set(found, values[name], value):
                return None
        elif token.startswith("-") or not token:
            return None
        else:
            found.paths.append(Path(token))
    return found if found.paths else None


def _set(found: Invocation, attribute: str, value: str) -> bool:
    if attribute == "fmt":
        if value not in core.FORMAT_CHOICES:
            return False
        found.fmt = value
    elif attribute == "environments":
        found.environments = Path(value)
    elif attribute == "out":
        found.out = value
    return True


def run(found: Invocation) -> int:
    if found.command == "validate":
        return core.validate(found.paths, found.environments, found.fmt)
    return core.render(
        found.paths,
        found.environments,
        found.out,
        check=found.check,
        prune=found.prune,
        fmt=found.fmt,
    )


def _skip_pydantic_plugin_lookup() -> None:
    """Pydantic looks for plugins the first time it builds a validator: it imports
    importlib.metadata and reads the metadata of every installed distribution, a tenth of a
    one-spec `validate`. The fast path uses no pydantic plugin, so it answers "none" in
    advance, unless pydantic is loaded already or the user names plugins to skip (then
    pydantic's own lookup decides)."""
    name = "pydantic.plugin._loader"
    if name in sys.modules or "PYDANTIC_DISABLE_PLUGINS" in os.environ:
        return
    loader = types.ModuleType(name, "No pydantic plugins (ilab_gitops.cli.entry).")
    loader.get_plugins = tuple  # type: ignore[attr-defined]
    sys.modules[name] = loader


def main() -> None:
    found = None if os.environ.get("ILAB_GITOPS_NO_FASTPATH") else parse(sys.argv[1:])
    if found is not None:
        _skip_pydantic_plugin_lookup()
        # A short process that builds many long-lived objects (pydantic's model machinery,
        # then the specs): the cyclic collector would only rescan them (3-4 % of a cold
        # one-spec validate). `batch_memory` does the same around a batch under typer.
        gc.disable()
    if found is None:
        from ilab_gitops.cli.typer_app import main as typer_main

        typer_main()
        return
    try:
        code = run(found)
    except KeyboardInterrupt:
        sys.stderr.write("ilab-gitops: aborted\n")
        code = 130
    except Exception as err:  # the same contract as cli.main: one line, exit 3
        if found.debug:
            import traceback  # only here: it pulls in linecache and tokenize

            traceback.print_exc()
        sys.stderr.write(f"ilab-gitops: internal error: {type(err).__name__}: {err}\n")
        code = core.EXIT_INTERNAL
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
