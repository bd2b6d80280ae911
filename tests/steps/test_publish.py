"""publish: upload's output -> a local Hugging Face Hub and results.json in local S3."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilab_gitops.results import RunResults
from ilab_gitops.steps import publish, upload
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.uploads import MiB
from tests.steps.builders import base_params, write_params
from tests.steps.conftest import S3Env
from tests.steps.evaldata import write_eval_outputs
from tests.steps.hf_fake import FakeHub

PREFIX = "ilab-runs/lab-h100/ilab/r1"
TOKEN = "hf_test_token"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub(TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        yield server


@pytest.fixture
def uploaded(tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in s3.env("OUTPUT").items():
        monkeypatch.setenv(name, value)
    candidate = tmp_path / "hf_format" / "samples_200"
    candidate.mkdir(parents=True)
    (candidate / "config.json").write_text('{"model_type": "llama"}')
    (candidate / "model.safetensors").write_bytes(os.urandom(MiB))
    mt, final = write_eval_outputs(tmp_path / "eval", candidate, tmp_path / "base")
    params = upload.UploadParams.model_validate(
        base_params(
            tmp_path,
            "upload",
            mtBenchPath=str(mt),
            finalEvalPath=str(final),
            destinationPrefix=PREFIX,
        )
    )
    upload.upload(params)
    return params.output


def publish_params(tmp_path: Path, upload_dir: Path) -> Path:
    raw = base_params(
        tmp_path,
        "publish",
        uploadPath=str(upload_dir),
        huggingFace={"repo": "example-org/granite-lab", "revision": "release-1", "private": True},
        github={"commentOnPullRequests": True, "createRelease": True},
        taxonomy={
            "repoUrl": "https://github.com/example-org/taxonomy",
            "commit": "9" * 40,
            "pullRequests": [1433, 1412],
        },
        baseModel={"huggingFace": {"repo": "ibm-granite/granite-7b-base", "revision": "a" * 40}},
        specSha256="5" * 64,
        cluster="lab-h100",
        namespace="ilab",
        caBundle=None,
    )
    return write_params(tmp_path / "publish.json", raw)


def test_publish_to_hub_and_results_next_to_the_model(
    tmp_path: Path, s3: S3Env, hub: FakeHub, uploaded: Path
) -> None:
    params = publish_params(tmp_path, uploaded)
    assert publish.main(["--params", str(params)]) == 0
    assert hub.unknown == []
    assert hub.repos["example-org/granite-lab"]["visibility"] == "private"
    assert hub.branches["example-org/granite-lab"] == {"main", "release-1"}
    files = hub.files[("example-org/granite-lab", "release-1")]
    assert sorted(files) == ["README.md", "config.json", "model.safetensors"]
    candidate = tmp_path / "hf_format" / "samples_200"
    assert files["model.safetensors"] == (candidate / "model.safetensors").read_bytes()
    card = files["README.md"].decode()
    assert card.startswith("---\nbase_model: ibm-granite/granite-7b-base\n")
    assert hub.validated == [
        {"base_model": "ibm-granite/granite-7b-base", "tags": ["instructlab", "ilab-gitops"]}
    ]
    assert "- [#1412](https://github.com/example-org/taxonomy/pull/1412)" in card
    assert "- [#1433](https://github.com/example-org/taxonomy/pull/1433)" in card
    assert "| MT-Bench-Branch | 5.000 | 6.500 | +1.500 |" in card
    assert "| MMLU-Branch | 0.500 | 0.625 | +0.125 |" in card
    assert "| `compositional_skills/writing/qna.yaml` | 5.000 | 6.500 |" in card
    assert "## Changelog" in card

    body = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/results.json")["Body"].read()
    results = RunResults.model_validate_json(body)
    assert (results.cluster, results.namespace) == ("lab-h100", "ilab")
    assert results.candidateCheckpoint == "samples_200"
    assert results.taxonomy.pullRequests == [1412, 1433]
    assert results.model.s3Uri == f"s3://{s3.bucket}/{PREFIX}/model/"
    assert results.model.huggingFaceRevision == "release-1"
    out = Path(base_params(tmp_path, "publish")["outputPath"])
    assert (out / "results.json").is_file() and (out / "README.md").read_text() == card

    # A re-run after the marker was lost keeps the results.json that is there.
    shutil.rmtree(out)
    assert publish.main(["--params", str(params)]) == 0
    again = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/results.json")["Body"].read()
    assert again == body


def test_refuses_to_publish_a_model_that_changed_since_upload(
    tmp_path: Path, s3: S3Env, hub: FakeHub, uploaded: Path
) -> None:
    (tmp_path / "hf_format" / "samples_200" / "config.json").write_text("{}")
    params = publish.PublishParams.model_validate_json(
        publish_params(tmp_path, uploaded).read_bytes()
    )
    with pytest.raises(StepError, match=r"config\.json changed since it was uploaded"):
        publish.publish(params)
    assert hub.files == {}
