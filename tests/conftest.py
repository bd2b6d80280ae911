"""Shared test setup: the golden-file update flag and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPDATE_COMMAND = "make update-goldens  (or: pytest --update-goldens)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="Rewrite golden files and generated artefacts instead of comparing them.",
    )


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens")) or bool(
        os.environ.get("ILAB_UPDATE_GOLDENS")
    )
