"""publish: upload's output -> a local Hugging Face Hub and results.json in local S3."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilab_gitops.results.model import RunResults
from ilab_gitops.steps import publish, upload
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.uploads import MiB
from tests.steps.builders import base_params, write_params
from tests.steps.conftest import S3Env
from tests.steps.evaldata import write_eval_outputs
from tests.steps.hf_fake import GITATTRIBUTES, FakeHub

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
    assert len(hub.commits) == 1  # the revision already holds exactly this: no new commit


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


REPO = "example-org/granite-lab"


def run_publish(tmp_path: Path, uploaded: Path) -> int:
    return publish.main(["--params", str(publish_params(tmp_path, uploaded))])


def results_in_s3(s3: S3Env) -> list[str]:
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{PREFIX}/results.json")
    return [o["Key"] for o in listed.get("Contents", [])]


def forget_local_output(tmp_path: Path) -> None:
    shutil.rmtree(Path(base_params(tmp_path, "publish")["outputPath"]))  # files and report/


def test_rerun_after_the_hub_commit_publishes_nothing_new(
    tmp_path: Path, s3: S3Env, hub: FakeHub, uploaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "now_rfc3339", lambda: "2026-01-02T03:04:05Z")
    assert run_publish(tmp_path, uploaded) == 0
    first = hub.models[REPO]["release-1"]
    # The first attempt died after the Hub commit: no results.json, no local output.
    s3.client.delete_object(Bucket=s3.bucket, Key=f"{PREFIX}/results.json")
    forget_local_output(tmp_path)
    monkeypatch.setattr(publish, "now_rfc3339", lambda: "2026-01-02T09:09:09Z")

    assert run_publish(tmp_path, uploaded) == 0

    assert len(hub.commits) == 1 and hub.models[REPO]["release-1"] == first
    body = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/results.json")["Body"].read()
    # The card on the Hub names the first attempt's time; results.json agrees with it.
    assert RunResults.model_validate_json(body).finishedAt == "2026-01-02T03:04:05Z"
    assert "finished 2026-01-02T03:04:05Z." in first.files["README.md"].decode()


def test_existing_revision_with_other_content_is_refused(
    tmp_path: Path,
    s3: S3Env,
    hub: FakeHub,
    uploaded: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.add_model(REPO, {".gitattributes": GITATTRIBUTES})
    other = {".gitattributes": GITATTRIBUTES, "config.json": b"{}", "model.safetensors": b"old"}
    hub.add_model(REPO, other, branch="release-1")
    assert run_publish(tmp_path, uploaded) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"error: refusing to overwrite Hugging Face {REPO}@release-1: it holds other content "
        "(3 files differ: README.md, config.json, model.safetensors); publish to a new revision"
    )
    assert hub.commits == [] and hub.models[REPO]["release-1"].files == other
    assert results_in_s3(s3) == []


def test_private_publish_to_an_existing_public_repo_is_refused(
    tmp_path: Path,
    s3: S3Env,
    hub: FakeHub,
    uploaded: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.add_model(REPO, {".gitattributes": GITATTRIBUTES}, private=False)
    assert run_publish(tmp_path, uploaded) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: publish.huggingFace.private is true, but {REPO} exists and is public: "
        "refusing to publish there (make it private on the Hub or choose another repo)"
    )
    assert hub.commits == [] and sorted(hub.models[REPO]) == sorted(
        ["main", hub.models[REPO]["main"].commit]
    )
    assert results_in_s3(s3) == []


def test_new_branch_holds_only_this_model(
    tmp_path: Path, s3: S3Env, hub: FakeHub, uploaded: Path
) -> None:
    main = {
        ".gitattributes": GITATTRIBUTES,
        "README.md": b"an older model\n",
        "model-00001-of-00002.safetensors": b"old weights",
    }
    hub.add_model(REPO, main)
    assert run_publish(tmp_path, uploaded) == 0
    assert hub.models[REPO]["main"].files == main
    branch = hub.models[REPO]["release-1"].files
    assert sorted(branch) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    candidate = tmp_path / "hf_format" / "samples_200"
    assert branch["model.safetensors"] == (candidate / "model.safetensors").read_bytes()
    assert results_in_s3(s3) == [f"{PREFIX}/results.json"]
