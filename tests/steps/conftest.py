"""Fixtures for the step tests: a real S3 server on 127.0.0.1, a flaky TCP proxy, a tiny model.

These tests need the step images' dependencies (`.venv-steps`); under the CLI's light venv
they are not collected at all (see `collect_ignore_glob`), and the report header says so.
"""

from __future__ import annotations

import os

# Torch on a 2-core machine is ~35x slower for tiny models with its default thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import importlib.util
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_HEAVY = ("boto3", "moto", "torch", "transformers", "instructlab.training", "huggingface_hub")
MISSING = [name for name in _HEAVY if importlib.util.find_spec(name.split(".")[0]) is None]
if MISSING and os.environ.get("ILAB_REQUIRE_STEPS"):
    # `make pytest-steps` sets this: there, a missing package is a broken install, not a skip.
    raise RuntimeError(f"step test dependencies missing: {', '.join(MISSING)}")
collect_ignore_glob = ["test_*.py"] if MISSING else []


# Warnings raised inside third-party libraries: the project turns warnings into errors, which
# is right for our code but would make these tests fail on a dependency's deprecation notice.
THIRD_PARTY_WARNINGS = (
    "ignore::pydantic.warnings.PydanticDeprecatedSince20",
    "ignore::DeprecationWarning:(instructlab|transformers|datasets|lm_eval|torch|botocore"
    "|moto|werkzeug|huggingface_hub|multiprocess|dill|pyarrow|git).*",
    "ignore::FutureWarning:(transformers|datasets|torch|huggingface_hub).*",
    "ignore::ResourceWarning",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in THIRD_PARTY_WARNINGS:
        config.addinivalue_line("filterwarnings", line)


def pytest_report_header(config: pytest.Config) -> str | None:
    if MISSING:
        return f"tests/steps not collected: missing {', '.join(MISSING)} (use .venv-steps)"
    return None


@dataclass(frozen=True)
class S3Env:
    """A fresh bucket on the local S3 server, and a direct client to arrange objects."""

    endpoint: str
    bucket: str
    client: Any

    def env(self, prefix: str, *, endpoint: str | None = None) -> dict[str, str]:
        return {
            f"ILAB_{prefix}_BUCKET": self.bucket,
            f"ILAB_{prefix}_ACCESS_KEY": "test-access",
            f"ILAB_{prefix}_SECRET_KEY": "test-secret",
            f"ILAB_{prefix}_ENDPOINT": endpoint or self.endpoint,
            f"ILAB_{prefix}_REGION": "us-east-1",
            f"ILAB_{prefix}_VERIFY_TLS": "false",
        }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> S3Env:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-access",
        aws_secret_access_key="test-secret",
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Env(s3_endpoint, bucket, client)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.steps.tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches (datasets, HF) go to the test's tmp dir, as they go to /tmp in the pods."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
