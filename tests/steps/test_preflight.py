"""preflight against real components: moto's S3 server, the OpenAI-compatible judge fake and
the Hugging Face fake, all on 127.0.0.1; every problem found at once, one line each."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ilab_gitops.steps import prepare
from ilab_gitops.steps.preflight import PreflightParams, check_taxonomy, run_checks
from tests.steps.builders import base_params, sdg_members, tar_bytes, write_params
from tests.steps.conftest import S3Env
from tests.steps.hf_fake import FakeHub
from tests.steps.openai_fake import FakeOpenAI

JUDGE_TOKEN = "judge-token-123"
HF_TOKEN = "hf_read_token_456"
REPO = "acme/tiny-base"
KEY = "sdg/data.tar.gz"


def params(hf_revision: str | None = None, judge_ca: str | None = None) -> PreflightParams:
    """What the compiler writes for a run with a Hugging Face base model (manifests/steps.py)."""
    secrets = [
        {"env": f"ILAB_{prefix}_{key.upper()}", "secretKeyRef": {"name": secret, "key": key}}
        for prefix, secret in (("SDG", "sdg-store"), ("OUTPUT", "out-store"))
        for key in ("bucket", "access_key", "secret_key")
    ]
    secrets.append(
        {"env": "ILAB_SDG_DATA_KEY", "secretKeyRef": {"name": "sdg-store", "key": "data_key"}}
    )
    secrets += [
        {"env": f"ILAB_JUDGE_{key.upper()}", "secretKeyRef": {"name": "judge", "key": key}}
        for key in ("api_token", "endpoint", "model_name")
    ]
    raw = {
        "secrets": secrets,
        "s3": [
            {
                "field": "sdgData.secretRef",
                "prefix": "SDG",
                "secretRef": {"name": "sdg-store"},
                "objectKeyEnv": "ILAB_SDG_DATA_KEY",
            },
            {"field": "output.secretRef", "prefix": "OUTPUT", "secretRef": {"name": "out-store"}},
        ],
        "judge": {"secretRef": {"name": "judge"}, "caBundle": judge_ca},
        "huggingFace": (
            {"repo": REPO, "revision": hf_revision, "tokenEnv": "HF_TOKEN"} if hf_revision else None
        ),
    }
    return PreflightParams.model_validate(raw)


@pytest.fixture
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(lambda _model, _messages: "ok", api_key=JUDGE_TOKEN) as server:
        server.models = ["judge-model"]
        yield server


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(HF_TOKEN) as server:
        yield server


@pytest.fixture
def good_env(
    s3: S3Env, judge: FakeOpenAI, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Every Secret key set and right: the SDG tarball exists, the judge serves its model."""
    s3.client.put_object(Bucket=s3.bucket, Key=KEY, Body=b"tarball")
    values = {
        **s3.env("SDG"),
        **s3.env("OUTPUT"),
        "ILAB_SDG_DATA_KEY": KEY,
        "ILAB_JUDGE_API_TOKEN": JUDGE_TOKEN,
        "ILAB_JUDGE_ENDPOINT": judge.url,
        "ILAB_JUDGE_MODEL_NAME": "judge-model",
        "HF_TOKEN": HF_TOKEN,
        "HF_ENDPOINT": hub.url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_everything_in_order_passes(good_env: dict[str, str], hub: FakeHub) -> None:
    commit = hub.add_model(REPO, {"config.json": b"{}"}, branch="main")
    assert run_checks(params(hf_revision=commit), good_env) == []
    assert any("/revision/" in seen.path for seen in hub.seen)


def test_every_problem_is_reported_at_once(
    good_env: dict[str, str],
    s3: S3Env,
    hub: FakeHub,
    judge: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub.add_model(REPO, {"config.json": b"{}"}, branch="main")
    monkeypatch.delenv("ILAB_OUTPUT_ACCESS_KEY")  # a key missing from the output Secret
    monkeypatch.setenv("ILAB_SDG_DATA_KEY", "sdg/missing.tar.gz")
    monkeypatch.setenv("ILAB_JUDGE_API_TOKEN", "wrong-token")
    problems = run_checks(params(hf_revision="f" * 40), os.environ)
    assert problems == [
        "secret out-store: key access_key is missing or empty (env ILAB_OUTPUT_ACCESS_KEY)",
        f"sdgData.secretRef (secret sdg-store): object 'sdg/missing.tar.gz' not found in bucket "
        f"'{s3.bucket}' at {s3.endpoint}",
        f"judge (secret judge): {judge.url}/models refused api_token (HTTP 401)",
        f"baseModel.huggingFace {REPO}@{'f' * 40}: revision not found",
    ]
    assert all("wrong-token" not in line and JUDGE_TOKEN not in line for line in problems)


def test_unreachable_and_missing_things_are_named(
    good_env: dict[str, str], s3: S3Env, judge: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("ILAB_OUTPUT_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ILAB_SDG_BUCKET", "no-such-bucket")
    monkeypatch.setenv("ILAB_JUDGE_MODEL_NAME", "other-model")
    problems = run_checks(params(), os.environ)
    assert problems == [
        f"sdgData.secretRef (secret sdg-store): bucket 'no-such-bucket' at {s3.endpoint} "
        "does not exist",
        f"output.secretRef (secret out-store): bucket '{s3.bucket}' at http://127.0.0.1:{port} "
        "is unreachable (EndpointConnectionError)",
        f"judge (secret judge): {judge.url}/models does not serve model_name 'other-model' "
        "(serves: judge-model)",
    ]
    monkeypatch.setenv("ILAB_JUDGE_ENDPOINT", f"http://127.0.0.1:{port}/v1")
    assert run_checks(params(), os.environ)[-1] == (
        f"judge (secret judge): http://127.0.0.1:{port}/v1/models is unreachable "
        "(ConnectionRefusedError)"
    )


def test_judge_ca_bundle_must_be_mounted_and_pem(good_env: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    assert run_checks(params(judge_ca=missing), good_env) == [
        f"judge (secret judge): CA bundle {missing} is not mounted (check the ConfigMap and key)"
    ]
    bad = tmp_path / "bad.crt"
    bad.write_text("not a certificate\n")
    [line] = run_checks(params(judge_ca=str(bad)), good_env)
    assert line.startswith(f"judge (secret judge): CA bundle {bad} is not a PEM certificate")


def test_prepare_stops_before_any_download(
    tmp_path: Path,
    good_env: dict[str, str],
    s3: S3Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ILAB_JUDGE_ENDPOINT")
    monkeypatch.setenv("ILAB_OUTPUT_BUCKET", "gone")
    raw = base_params(
        tmp_path,
        "prepare",
        sdgData={"sha256": None, "caBundle": None},
        baseModel={"source": "pvc", "path": str(tmp_path / "model")},
        taxonomy={"repoUrl": "https://example.invalid/taxonomy", "commit": "0" * 40},
        maxSeqLen=256,
        preflight=params().model_dump(),
    )
    path = write_params(tmp_path / "params.json", raw)
    assert prepare.main(["--params", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: preflight found 2 problem(s) before any download:",
        "  secret judge: key endpoint is missing or empty (env ILAB_JUDGE_ENDPOINT)",
        f"  output.secretRef (secret out-store): bucket 'gone' at {s3.endpoint} does not exist",
    ]
    output = Path(json.loads(path.read_text())["outputPath"])
    assert not output.parent.exists()  # nothing staged, nothing downloaded


def taxonomy_checkout(root: Path, *, head: str, refs: dict[str, str], packed: str = "") -> Path:
    """A taxonomy/.git as a clone leaves it (HEAD on a branch, loose or packed refs)."""
    git = root / "taxonomy" / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text(head + "\n")
    for ref, sha in refs.items():
        (git / ref).parent.mkdir(parents=True, exist_ok=True)
        (git / ref).write_text(sha + "\n")
    if packed:
        (git / "packed-refs").write_text(packed)
    return root / "taxonomy"


def test_taxonomy_usable_for_final_eval(tmp_path: Path) -> None:
    commit, other = "a" * 40, "b" * 40
    loose = taxonomy_checkout(
        tmp_path / "loose",
        head="ref: refs/heads/run",
        refs={"refs/heads/run": commit, "refs/heads/main": other},
    )
    assert check_taxonomy(loose, commit, "main") == []
    packed = taxonomy_checkout(
        tmp_path / "packed",
        head=commit,
        refs={},
        packed=f"# pack-refs with: peeled\n{other} refs/remotes/origin/main\n^{other}\n",
    )
    assert check_taxonomy(packed, commit, "main") == []
    assert check_taxonomy(packed, other, "release") == [
        f"taxonomy/ in the SDG tarball is at {commit}, but taxonomy.commit names {other}",
        "taxonomy/ in the SDG tarball has no branch 'release' "
        "(evaluation.final.taxonomyBaseBranch), locally or as origin/",
    ]
    bare = tmp_path / "plain" / "taxonomy"
    bare.mkdir(parents=True)
    assert check_taxonomy(bare, commit, "main") == [
        "taxonomy/ in the SDG tarball has no .git folder: final evaluation needs the "
        "taxonomy's git history (pack the tarball with taxonomy/.git)"
    ]


def test_prepare_refuses_a_taxonomy_without_git_and_keeps_nothing(
    tmp_path: Path,
    s3: S3Env,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {**s3.env("SDG"), "ILAB_SDG_DATA_KEY": KEY}.items():
        monkeypatch.setenv(name, value)
    s3.client.put_object(Bucket=s3.bucket, Key=KEY, Body=tar_bytes(sdg_members()))
    raw = base_params(
        tmp_path,
        "prepare",
        sdgData={"sha256": None, "caBundle": None},
        baseModel={"source": "pvc", "path": str(tiny_model)},
        taxonomy={"repoUrl": "https://example.invalid/taxonomy", "commit": "0" * 40},
        maxSeqLen=256,
        preflight={"secrets": [], "s3": [], "taxonomyBaseBranch": "main"},
    )
    path = write_params(tmp_path / "params.json", raw)
    assert prepare.main(["--params", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: taxonomy/ in the SDG tarball has no .git folder: final evaluation needs the "
        "taxonomy's git history (pack the tarball with taxonomy/.git)"
    )
    output = Path(raw["outputPath"])
    assert not output.parent.exists() or sorted(output.parent.iterdir()) == []
