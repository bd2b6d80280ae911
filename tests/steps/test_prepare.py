"""prepare against a real S3 server on 127.0.0.1 (moto), with real data processing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.steps import prepare
from ilab_gitops.steps.markers import read_marker
from tests.steps.builders import base_params, link, sdg_members, sha256, tar_bytes, write_params
from tests.steps.conftest import S3Env
from tests.steps.netfaults import CuttingProxy

KEY = "sdg/data.tar.gz"


def params_for(tmp_path: Path, digest: str | None, model: dict[str, Any]) -> Path:
    params = base_params(
        tmp_path,
        "prepare",
        sdgData={"sha256": digest, "caBundle": None},
        baseModel=model,
        taxonomy={"repoUrl": "https://example.invalid/taxonomy", "commit": "0" * 40},
        maxSeqLen=256,
        preflight={"secrets": [], "s3": []},  # test_preflight.py covers the checks
    )
    return write_params(tmp_path / "params.json", params)


def pvc_model(tiny_model: Path) -> dict[str, Any]:
    return {"source": "pvc", "path": str(tiny_model)}


def setenv(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sdg_env(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    setenv(monkeypatch, s3.env("SDG"))
    monkeypatch.setenv("ILAB_SDG_DATA_KEY", KEY)
    return s3


def output_of(params_file: Path) -> Path:
    return Path(json.loads(params_file.read_text())["outputPath"])


def leftovers(output: Path) -> list[str]:
    return sorted(p.name for p in output.parent.iterdir()) if output.parent.exists() else []


def test_good_tarball_with_s3_base_model(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tar_bytes(sdg_members(), extra=[link("taxonomy/latest", "compositional_skills")])
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=data)
    for path in sorted(tiny_model.iterdir()):
        sdg_env.client.upload_file(str(path), sdg_env.bucket, f"models/tiny/{path.name}")
    setenv(monkeypatch, sdg_env.env("MODEL"))
    params = params_for(tmp_path, sha256(data), {"source": "s3", "prefix": "models/tiny"})

    assert prepare.main(["--params", str(params)]) == 0

    out = output_of(params)
    assert leftovers(out) == [out.name]  # no staging folder left
    for name in ("data", "model", "taxonomy", "processed/knowledge", "processed/skills"):
        assert (out / name).is_dir(), name
    assert not (out / "model" / "README.md").exists()  # replaced by the base model
    assert (out / "model" / "config.json").is_file()
    marker = read_marker(out)
    assert marker is not None
    assert marker.details["sdgData"]["sha256"] == sha256(data)
    assert marker.details["samples"] == {"knowledge": 8, "skills": 8}
    assert marker.details["baseModel"]["uri"] == f"s3://{sdg_env.bucket}/models/tiny/"
    processed = (out / "processed/knowledge/data.jsonl").read_text().splitlines()
    assert len(processed) == 8 and {"input_ids", "labels", "len"} <= json.loads(processed[0]).keys()
    for rel, digest in marker.files.items():
        assert sha256((out / rel).read_bytes()) == digest, rel
    assert "model/config.json" in marker.files and "processed/skills/data.jsonl" in marker.files


def test_rerun_with_marker_present_does_nothing(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tar_bytes(sdg_members())
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=data)
    params = params_for(tmp_path, None, pvc_model(tiny_model))
    assert prepare.main(["--params", str(params)]) == 0
    marker = (output_of(params) / ".done.json").read_bytes()

    # Secrets gone and object deleted: a re-run must not need either.
    sdg_env.client.delete_object(Bucket=sdg_env.bucket, Key=KEY)
    for name in list(os.environ):
        if name.startswith("ILAB_SDG_"):
            monkeypatch.delenv(name)
    assert prepare.main(["--params", str(params)]) == 0
    assert (output_of(params) / ".done.json").read_bytes() == marker


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {"data/x.jsonl": b"{}", "model/a": b"", "other/b": b""},
            "missing taxonomy; found ['data/', 'model/', 'other/']",
        ),
        (
            {"sdg/data/x": b"", "sdg/model/y": b"", "sdg/taxonomy/z": b""},
            "everything is inside sdg/",
        ),
    ],
)
def test_wrong_layout(
    tmp_path: Path,
    sdg_env: S3Env,
    tiny_model: Path,
    members: dict[str, bytes],
    message: str,
    *,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=tar_bytes(members))
    params = params_for(tmp_path, None, pvc_model(tiny_model))
    assert prepare.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: SDG tarball must have top-level")
    assert leftovers(output_of(params)) == []


def test_sha256_mismatch_keeps_nothing(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tar_bytes(sdg_members())
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=data)
    params = params_for(tmp_path, "0" * 64, pvc_model(tiny_model))
    assert prepare.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert (
        f"sha256 mismatch for s3://{sdg_env.bucket}/{KEY}: expected {'0' * 64}, "
        f"got {sha256(data)}; nothing was kept" in err
    )
    assert leftovers(output_of(params)) == []


def test_corrupt_gzip(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tar_bytes(sdg_members())
    bad = good[:30] + bytes(b ^ 0x5A for b in good[30:200]) + good[200:]
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=bad)
    params = params_for(tmp_path, None, pvc_model(tiny_model))
    assert prepare.main(["--params", str(params)]) == 2
    assert "not a readable tar archive" in capsys.readouterr().err
    assert leftovers(output_of(params)) == []


def test_path_traversal_in_s3_tarball(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tar_bytes(sdg_members(), extra=[link("data/escape", "../../../../etc")])
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=data)
    params = params_for(tmp_path, None, pvc_model(tiny_model))
    assert prepare.main(["--params", str(params)]) == 2
    assert "member 'data/escape': symlink '../../../../etc' points outside" in (
        capsys.readouterr().err
    )
    assert leftovers(output_of(params)) == []


def test_connection_drop_mid_download_resumes(
    tmp_path: Path, sdg_env: S3Env, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = os.urandom(3 * 1024 * 1024)  # incompressible, so the cut lands mid-body
    data = tar_bytes(sdg_members({"data/blob.bin": blob}))
    sdg_env.client.put_object(Bucket=sdg_env.bucket, Key=KEY, Body=data)
    host, port = sdg_env.endpoint.removeprefix("http://").split(":")
    with CuttingProxy((host, int(port)), cuts=[1024 * 1024]) as proxy:
        setenv(monkeypatch, sdg_env.env("SDG", endpoint=proxy.endpoint))
        monkeypatch.setattr("ilab_gitops.steps.s3.time.sleep", lambda _s: None)
        params = params_for(tmp_path, sha256(data), pvc_model(tiny_model))
        assert prepare.main(["--params", str(params)]) == 0
    assert proxy.cut_count == 1 and proxy.connections >= 2
    out = output_of(params)
    assert (out / "data" / "blob.bin").read_bytes() == blob
    marker = read_marker(out)
    assert marker is not None and marker.details["sdgData"]["resumes"] == 1


def test_missing_secret_key_is_named(tmp_path: Path, s3: S3Env, tiny_model: Path) -> None:
    params = params_for(tmp_path, None, pvc_model(tiny_model))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILAB_")}
    env.update(s3.env("SDG"))
    result = subprocess.run(
        [sys.executable, "-m", "ilab_gitops.steps.prepare", "--params", str(params)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: environment variable ILAB_SDG_DATA_KEY is not set: "
        "add key 'data_key' to the sdgData Secret"
    )
    assert "Traceback" not in result.stderr


def test_invalid_params_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path / "p.json", base_params(tmp_path, "prepare", maxSeqLen="x"))
    assert prepare.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "invalid params" in err and "sdgData: Field required" in err
