"""What every step shares: params, secrets from the environment, exit codes, the done marker.

The exit-code contract matches the CLI's: 0 done (or already done), 2 invalid input (bad
params, a missing secret key, a refused overwrite, a corrupt download), 3 internal error.
Expected failures are `StepError`s and print one line; Kubernetes shows it as the pod's
termination message. Anything else prints one line too, and a traceback only with
`--debug` (or `ILAB_DEBUG=1`), so a secret that ends up in an exception message is not
dumped by default.

Idempotence: a step whose `<outputPath>/.done.json` exists exits 0 at once, so a Job that
Argo CD or Flux re-creates after it finished does no work twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ilab_gitops.steps.markers import read_marker

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_INTERNAL = 3

DEFAULT_PARAMS = "/etc/ilab/params.json"

log = logging.getLogger("ilab_gitops.steps")


class StepError(Exception):
    """An expected failure with a message for the person who reads the pod's log."""


class StepParams(BaseModel):
    """Keys the compiler puts in every step's params.json (`manifests/steps.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apiVersion: str
    run: str
    step: str
    stepName: str
    outputPath: str
    attempt: tuple[int, int]

    @property
    def output(self) -> Path:
        return Path(self.outputPath)


P = TypeVar("P", bound=StepParams)


def secret_env(name: str, what: str) -> str:
    """A required value the manifests take from a Secret; `what` names the Secret's key."""
    value = os.environ.get(name)
    if value is None or value == "":
        raise StepError(f"environment variable {name} is not set: {what}")
    return value


def optional_env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def load_params(path: Path, model: type[P]) -> P:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"{path}: params file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StepError(f"{path}: cannot read params: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise StepError(f"{path}: invalid params: {problems}") from None


def _parse_args(argv: Sequence[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params",
        type=Path,
        default=Path(os.environ.get("ILAB_PARAMS", DEFAULT_PARAMS)),
        help="params.json written by the compiler (default: $ILAB_PARAMS or %(default)s)",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks")
    return parser.parse_args(argv)


def run_step(
    argv: Sequence[str] | None,
    model: type[P],
    body: Callable[[P], None],
    *,
    description: str,
) -> int:
    """Parse args, load params, skip when done, run `body`, map errors to exit codes."""
    args = _parse_args(argv, description)
    debug = bool(args.debug or os.environ.get("ILAB_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        params = load_params(args.params, model)
        marker = read_marker(params.output)
        if marker is not None:
            log.info("%s: already done at %s; nothing to do", params.stepName, marker.finishedAt)
            return EXIT_OK
        body(params)
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return EXIT_INTERNAL
    return EXIT_OK
