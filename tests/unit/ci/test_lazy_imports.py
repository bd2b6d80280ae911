"""Importing the CLI must not load the heavy clients the results sync uses."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("github", "boto3", "botocore", "git", "moto", "requests")


def test_cli_import_loads_no_github_s3_or_git_client() -> None:
    code = (
        "import sys, ilab_gitops.cli.typer_app, ilab_gitops.cli.results, ilab_gitops.results.sync\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
