"""upload against the local S3 server: multipart, manifest, write-once."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

import pytest

from ilab_gitops.steps import upload
from ilab_gitops.steps.outputs import Manifest, UploadOutput
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.s3 import make_client, settings_from_env
from ilab_gitops.steps.uploads import PROBE_NAME, MiB, Uploader
from tests.steps.builders import base_params, write_params
from tests.steps.conftest import S3Env
from tests.steps.evaldata import write_eval_outputs
from tests.steps.s3proxy import ConditionStrippingProxy

PART = 5 * MiB  # the smallest part S3 accepts
PREFIX = "ilab-runs/kind/ilab-dev/r1"


@pytest.fixture
def setup(tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> upload.UploadParams:
    for name, value in s3.env("OUTPUT").items():
        monkeypatch.setenv(name, value)
    candidate = tmp_path / "train2" / "checkpoints" / "hf_format" / "samples_200"
    candidate.mkdir(parents=True)
    (candidate / "config.json").write_text("{}")
    (candidate / "model.safetensors").write_bytes(os.urandom(12 * MiB + 123))
    mt, final = write_eval_outputs(tmp_path / "eval", candidate, tmp_path / "base")
    raw = base_params(
        tmp_path,
        "upload",
        mtBenchPath=str(mt),
        finalEvalPath=str(final),
        destinationPrefix=PREFIX + "/",
        caBundle=None,
    )
    return upload.UploadParams.model_validate(raw)


def test_multipart_upload_and_manifest(setup: upload.UploadParams, s3: S3Env) -> None:
    upload.upload(setup, part_size=PART)
    big = Path(json.loads((setup.output / "upload.json").read_text())["candidatePath"])
    weights = (big / "model.safetensors").read_bytes()
    key = f"{PREFIX}/model/model.safetensors"
    head = s3.client.head_object(Bucket=s3.bucket, Key=key, PartNumber=1)
    assert head["PartsCount"] == 3  # 12 MiB in 5 MiB parts
    got = s3.client.get_object(Bucket=s3.bucket, Key=key)
    assert got["Metadata"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert got["Body"].read() == weights

    manifest = Manifest.model_validate_json(
        s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/manifest.json")["Body"].read()
    )
    assert sorted(manifest.files) == [
        "eval/final/final_eval.json",
        "eval/mt_bench/mt_bench.json",
        "eval/mt_bench/mt_bench_samples_200.json",
        "model/config.json",
        "model/model.safetensors",
    ]
    for rel, entry in manifest.files.items():
        body = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/{rel}")["Body"].read()
        assert (hashlib.sha256(body).hexdigest(), len(body)) == (entry.sha256, entry.size)
    summary = UploadOutput.model_validate_json((setup.output / "upload.json").read_bytes())
    assert summary.s3Uri == f"s3://{s3.bucket}/{PREFIX}/"
    assert (setup.output / "manifest.json").is_file() and (setup.output / ".done.json").is_file()


def test_rerun_after_partial_upload_skips_identical_objects(
    setup: upload.UploadParams, s3: S3Env
) -> None:
    upload.upload(setup, part_size=PART)
    first = s3.client.head_object(Bucket=s3.bucket, Key=f"{PREFIX}/model/config.json")
    # Simulate a crash before the manifest and the local marker were written.
    s3.client.delete_object(Bucket=s3.bucket, Key=f"{PREFIX}/manifest.json")
    for child in setup.output.iterdir():
        child.unlink()
    setup.output.rmdir()
    upload.upload(setup, part_size=PART)
    again = s3.client.head_object(Bucket=s3.bucket, Key=f"{PREFIX}/model/config.json")
    assert again["LastModified"] == first["LastModified"]  # not rewritten
    marker = json.loads((setup.output / ".done.json").read_text())
    assert marker["details"]["uploaded"] == 1 and marker["details"]["alreadyThere"] == 5


def test_refuses_to_overwrite_a_different_object(
    tmp_path: Path, setup: upload.UploadParams, s3: S3Env, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"{PREFIX}/model/config.json"
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b'{"other": 1}')
    path = write_params(tmp_path / "p.json", setup.model_dump())
    assert upload.main(["--params", str(path)]) == 2
    assert (
        f"refusing to overwrite s3://{s3.bucket}/{key}: it holds a different artifact "
        "(sha256 unknown, ours " in capsys.readouterr().err
    )
    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b'{"other": 1}'
    assert not setup.output.exists()


def test_refuses_when_a_different_run_manifest_is_there(
    setup: upload.UploadParams, s3: S3Env
) -> None:
    s3.client.put_object(
        Bucket=s3.bucket, Key=f"{PREFIX}/manifest.json", Body=b"{}", Metadata={"sha256": "f" * 64}
    )
    with pytest.raises(StepError, match=r"a different artifact \(manifest sha256 f{64}\)"):
        upload.upload(setup, part_size=PART)
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=PREFIX)["Contents"]
    assert [o["Key"] for o in listed] == [f"{PREFIX}/manifest.json"]


def test_conditional_create_loses_a_race(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.env("OUTPUT").items():
        monkeypatch.setenv(name, value)
    client = make_client(settings_from_env("OUTPUT", "x", None))
    uploader = Uploader(client, s3.bucket)
    s3.client.put_object(Bucket=s3.bucket, Key="k", Body=b"theirs")
    monkeypatch.setattr(uploader, "existing_sha256", lambda _key: None)  # HEAD saw nothing
    with pytest.raises(StepError, match="was created by someone else meanwhile"):
        uploader.put_bytes("k", b"ours", hashlib.sha256(b"ours").hexdigest())
    assert s3.client.get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"theirs"


def no_probe_left(s3: S3Env) -> bool:
    listed = s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    return not [o["Key"] for o in listed if PROBE_NAME in o["Key"]]


def test_compliant_server_is_probed_once_and_the_probe_removed(
    setup: upload.UploadParams, s3: S3Env
) -> None:
    upload.upload(setup, part_size=PART)
    assert no_probe_left(s3)


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("ignore", r"ignores If-None-Match: \* \(put: a second create of s3://"),
        ("reject", r"rejects conditional writes \(put, NotImplemented\)"),
    ],
)
def test_server_without_conditional_writes_is_refused(
    tmp_path: Path,
    setup: upload.UploadParams,
    s3: S3Env,
    *,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: Literal["ignore", "reject"],
    why: str,
) -> None:
    with ConditionStrippingProxy(s3.endpoint, mode) as proxy:
        monkeypatch.setenv("ILAB_OUTPUT_ENDPOINT", proxy.endpoint)
        path = write_params(tmp_path / "p.json", setup.model_dump())
        assert upload.main(["--params", str(path)]) == 2
    assert proxy.stripped >= 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"error: {re.escape(proxy.endpoint)} \(bucket {s3.bucket}\) {why}.*: refusing to "
        r"upload, because objects there could be overwritten silently; use a server that "
        r"enforces conditional writes \(If-None-Match: \*\)",
        line,
    ), line
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount") == 0
    assert not setup.output.exists()


def test_multipart_is_probed_separately(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with ConditionStrippingProxy(s3.endpoint, "ignore") as proxy:
        for name, value in s3.env("OUTPUT", endpoint=proxy.endpoint).items():
            monkeypatch.setenv(name, value)
        uploader = Uploader(make_client(settings_from_env("OUTPUT", "x", None)), s3.bucket)
        with pytest.raises(StepError, match=r"ignores If-None-Match: \* \(multipart: a second"):
            uploader.probe("runs/r1/model/big.safetensors", "multipart")
    assert no_probe_left(s3)
    # Against the real (compliant) server, both probes pass and leave nothing behind.
    direct = Uploader(s3.client, s3.bucket)
    direct.probe("runs/r1/model/big.safetensors", "multipart")
    direct.probe("runs/r1/model/config.json", "put")
    assert direct.probed == {"multipart", "put"} and no_probe_left(s3)


def test_results_are_not_overwritten_through_a_server_that_ignores_conditions(
    s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config

    s3.client.put_object(Bucket=s3.bucket, Key="k", Body=b"theirs")
    with ConditionStrippingProxy(s3.endpoint, "ignore") as proxy:
        client = boto3.client(
            "s3",
            endpoint_url=proxy.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test-access",
            aws_secret_access_key="test-secret",
            config=Config(s3={"addressing_style": "path"}),
        )
        uploader = Uploader(client, s3.bucket)
        # Even when HEAD saw nothing (a racing writer), the write is never attempted.
        monkeypatch.setattr(uploader, "existing_sha256", lambda _key: None)
        with pytest.raises(StepError, match="ignores If-None-Match"):
            uploader.put_bytes("k", b"ours", hashlib.sha256(b"ours").hexdigest())
    assert s3.client.get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"theirs"
