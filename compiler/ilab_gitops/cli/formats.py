"""The one `--format` option of every command that prints diagnostics or a report.

text for people, github for workflow annotations, json (on standard output) for tools, auto
= github under GitHub Actions and text elsewhere. One definition keeps the choices the same
across commands.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Literal

import typer


class OutputFormat(StrEnum):
    text = "text"
    github = "github"
    json = "json"
    auto = "auto"


FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        help="text, github (annotations), json (on stdout) or auto: github under GitHub "
        "Actions, else text.",
    ),
]


def resolve(fmt: OutputFormat) -> Literal["text", "github", "json"]:
    """`auto` resolved for this process."""
    if fmt is OutputFormat.auto:
        return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return fmt.value  # type: ignore[return-value]


def problems_json(problems: Sequence[dict[str, str]]) -> str:
    """A list of findings as one deterministic JSON document."""
    return json.dumps(list(problems), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
