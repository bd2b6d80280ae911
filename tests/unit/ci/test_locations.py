from __future__ import annotations

import pytest

from ilab_gitops.manifests import steps
from ilab_gitops.results.locations import (
    Links,
    SettingsError,
    repo_from_url,
    results_key,
    s3_settings,
)
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=[e.stem for e in ENVIRONMENTS])
def test_results_key_is_where_the_upload_step_writes(example, environment) -> None:  # type: ignore[no-untyped-def]
    run, env = load_run(example), load_environment(environment)
    plan = steps.upload(run, env, {"eval-mt-bench": "a", "eval-final": "b"})
    assert results_key(run, env) == f"{plan.params['destinationPrefix']}/results.json"


def test_s3_settings_from_the_environment() -> None:
    settings = s3_settings(
        {
            "ILAB_RESULTS_S3_BUCKET": "b",
            "ILAB_RESULTS_S3_ACCESS_KEY": "k",
            "ILAB_RESULTS_S3_SECRET_KEY": "s",
            "ILAB_RESULTS_S3_ENDPOINT": "http://127.0.0.1:9",
            "ILAB_RESULTS_S3_VERIFY_TLS": "false",
        }
    )
    assert (settings.bucket, settings.region, settings.verify_tls) == ("b", "us-east-1", False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ILAB_RESULTS_S3_BUCKET is not set"),
        (
            {"ILAB_RESULTS_S3_BUCKET": "b", "ILAB_RESULTS_S3_ACCESS_KEY": "k"},
            "set both ILAB_RESULTS_S3_ACCESS_KEY and ILAB_RESULTS_S3_SECRET_KEY, or neither",
        ),
        (
            {"ILAB_RESULTS_S3_BUCKET": "b", "ILAB_RESULTS_S3_ENDPOINT": "minio:9000"},
            "ILAB_RESULTS_S3_ENDPOINT must be an http(s) URL, got 'minio:9000'",
        ),
        (
            {"ILAB_RESULTS_S3_BUCKET": "b", "ILAB_RESULTS_S3_VERIFY_TLS": "maybe"},
            "ILAB_RESULTS_S3_VERIFY_TLS must be true or false, got 'maybe'",
        ),
    ],
)
def test_s3_settings_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        s3_settings(env)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/taxonomy",
        "https://github.com/org/taxonomy.git",
        "https://GitHub.com/org/taxonomy/",
    ],
)
def test_repo_from_url(url: str) -> None:
    assert repo_from_url(url, "https://github.com") == "org/taxonomy"


@pytest.mark.parametrize(
    "url", ["https://gitlab.com/org/taxonomy", "https://github.com/org", "http://github.com/o/r"]
)
def test_repo_from_url_rejects_other_places(url: str) -> None:
    with pytest.raises(SettingsError, match=r"is not a repository on https://github\.com$"):
        repo_from_url(url, "https://github.com")


def test_links() -> None:
    links = Links("https://ghe.example.com/", "org/runs", "trunk", "out", {"r1": "dev"})
    assert links.run_folder("r1") == "https://ghe.example.com/org/runs/tree/trunk/out/dev/r1"
    assert links.run_folder("r2") == "https://ghe.example.com/org/runs/tree/trunk/out"
    assert links.results_file("r1") == "https://ghe.example.com/org/runs/blob/trunk/results/r1.json"
    assert links.release("r1") == "https://ghe.example.com/org/runs/releases/tag/r1"
    assert links.pull_request("org/tax", 3) == "https://ghe.example.com/org/tax/pull/3"
