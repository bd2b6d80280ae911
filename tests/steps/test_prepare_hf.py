"""prepare with a Hugging Face base model: the real `snapshot_download` against a local Hub.

The Hub (tests/steps/hf_fake.py) serves the tiny model as a private repo, LFS weights behind a
CDN redirect, the tree listing over several pages; the SDG tarball still comes from S3 (moto).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from ilab_gitops.steps import prepare
from ilab_gitops.steps.markers import read_marker
from tests.steps.builders import sdg_members, sha256, tar_bytes
from tests.steps.conftest import S3Env
from tests.steps.hf_fake import FakeHub
from tests.steps.test_prepare import KEY, leftovers, output_of, params_for, setenv

TOKEN = "hf_read_token_123"
REPO = "acme/tiny-base"
TAG = "v1.0"


@pytest.fixture
def hub(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The Hub at HF_ENDPOINT, holding the tiny model (private) at tag v1.0.

    huggingface_hub reads HF_ENDPOINT once, at import, so in this process the module
    constants are pointed at the fake as well; the subprocess test uses the variable alone.
    """
    import huggingface_hub.constants as hf_constants

    # Small pages: the listing of 6 files needs three requests, as a large repo would.
    with FakeHub(TOKEN, tree_page_size=2) as server:
        files = {p.name: p.read_bytes() for p in sorted(tiny_model.iterdir()) if p.is_file()}
        server.add_model(REPO, files, branch=TAG)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
        monkeypatch.setattr(
            hf_constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            server.url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        yield server


@pytest.fixture
def sdg_env(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    setenv(monkeypatch, s3.env("SDG"))
    monkeypatch.setenv("ILAB_SDG_DATA_KEY", KEY)
    s3.client.put_object(Bucket=s3.bucket, Key=KEY, Body=tar_bytes(sdg_members()))
    return s3


def hf_model(revision: str) -> dict[str, str]:
    return {"source": "huggingFace", "repo": REPO, "revision": revision}


@pytest.mark.parametrize("pin", ["tag", "commit"])
def test_base_model_from_hub_at_pinned_revision(
    tmp_path: Path, sdg_env: S3Env, hub: FakeHub, tiny_model: Path, pin: str
) -> None:
    commit = hub.models[REPO][TAG].commit
    revision = TAG if pin == "tag" else commit
    params = params_for(tmp_path, None, hf_model(revision))

    assert prepare.main(["--params", str(params)]) == 0

    out = output_of(params)
    model = out / "model"
    served = hub.models[REPO][TAG].files
    assert sorted(p.name for p in model.iterdir()) == sorted(served)  # no .cache/ left
    for name, data in served.items():
        assert (model / name).read_bytes() == data, name
    marker = read_marker(out)
    assert marker is not None
    assert marker.details["baseModel"] == {
        "source": "huggingFace",
        "replacedSdgModelFiles": 1,
        "uri": f"hf://{REPO}@{revision}",
    }
    assert marker.files["model/model.safetensors"] == sha256(served["model.safetensors"])
    assert marker.details["samples"] == {"knowledge": 8, "skills": 8}

    calls = [(s.method, s.path) for s in hub.seen]
    info = ("GET", f"/api/models/{REPO}/revision/{TAG}")
    # A tag is resolved to its commit first; a commit sha needs no resolving.
    assert (info in calls) == (pin == "tag")
    tree = [s for s in hub.seen if s.path == f"/api/models/{REPO}/tree/{commit}"]
    assert [s.query.get("cursor", ["0"]) for s in tree] == [["0"], ["2"], ["4"]]
    assert tree[0].query["recursive"] == ["true"]
    # Every file is fetched at the resolved commit, never at the moving tag.
    resolved = {s.path.rsplit("/", 1)[1] for s in hub.seen if "/resolve/" in s.path}
    assert resolved == set(served)
    assert all(f"/resolve/{commit}/" in s.path for s in hub.seen if "/resolve/" in s.path)
    # The token went to the Hub on every call, and never to the CDN holding the weights.
    assert {s.authorization for s in hub.seen} == {f"Bearer {TOKEN}"}
    assert [(s.path, s.authorization) for s in hub.cdn_seen] == [
        (f"/lfs/{sha256(served['model.safetensors'])}", None)
    ]
    assert hub.unknown == []


UNKNOWN = "0123456789abcdef" * 2 + "01234567"


@pytest.mark.parametrize(
    ("revision", "token", "message"),
    [
        (UNKNOWN, TOKEN, f"error: Hugging Face repo {REPO} has no revision {UNKNOWN}"),
        ("v9.9", TOKEN, f"error: Hugging Face repo {REPO} has no revision v9.9"),
        (
            None,
            None,
            f"error: Hugging Face repo {REPO} not found (or the token cannot read it)",
        ),
        (
            None,
            "hf_wrong",
            "error: Hugging Face rejected the token for {repo}@{revision} (HTTP 401): "
            "check the token in the baseModel Secret (HF_TOKEN)",
        ),
    ],
    ids=["unknown-commit", "unknown-tag", "no-token-private-repo", "wrong-token"],
)
def test_hub_errors_are_one_line_exit_2(
    tmp_path: Path,
    sdg_env: S3Env,
    hub: FakeHub,
    *,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    revision: str | None,
    token: str | None,
    message: str,
) -> None:
    # The compiler only lets a full commit sha through (spec: a tag could move under a run).
    revision = revision or hub.models[REPO][TAG].commit
    message = message.format(repo=REPO, revision=revision)
    if token is None:
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    params = params_for(tmp_path, None, hf_model(revision))

    assert prepare.main(["--params", str(params)]) == 2

    err = capsys.readouterr().err
    assert message in err.splitlines()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert leftovers(output_of(params)) == []
    assert hub.cdn_seen == []
    expected_auth = None if token is None else f"Bearer {token}"
    assert {s.authorization for s in hub.seen} == {expected_auth}


def test_wrong_token_in_a_fresh_process_reads_hf_endpoint(
    tmp_path: Path, sdg_env: S3Env, hub: FakeHub
) -> None:
    """The pod's view: HF_ENDPOINT and HF_TOKEN from the environment, one line on stderr."""
    commit = hub.models[REPO][TAG].commit
    params = params_for(tmp_path, None, hf_model(commit))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILAB_", "HF_"))}
    env.update(sdg_env.env("SDG"))
    env.update(
        {
            "ILAB_SDG_DATA_KEY": KEY,
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": "hf_revoked",
            "HF_HUB_DISABLE_XET": "1",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "ilab_gitops.steps.prepare", "--params", str(params)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: Hugging Face rejected the token for {REPO}@{commit} (HTTP 401)"
        ": check the token in the baseModel Secret (HF_TOKEN)"
    )
    assert "Traceback" not in result.stderr
    assert [(s.method, s.path, s.authorization) for s in hub.seen] == [
        ("GET", f"/api/models/{REPO}/tree/{commit}", "Bearer hf_revoked")
    ]
    assert {s.authorization for s in hub.telemetry} <= {None}  # the token stays home
    assert hub.unknown == []
    assert leftovers(output_of(params)) == []


def test_the_sdg_step_reaches_the_hub_in_its_offline_image(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sdg image sets HF_HUB_OFFLINE=1 for docling; the step's own preflight check and
    tokenizer download still reach the Hub, and offline mode is back on afterwards."""
    import huggingface_hub.constants as hf_constants

    from ilab_gitops.steps import base_model, sdg
    from ilab_gitops.steps.preflight import HuggingFaceParams, check_huggingface
    from ilab_gitops.steps.prepare import BaseModelParams

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    check = HuggingFaceParams(repo=REPO, revision=TAG, tokenEnv="HF_TOKEN")
    env = {"HF_TOKEN": TOKEN}
    offline = check_huggingface(check, env)
    assert offline and "unreachable" in offline[0]  # what the image alone would give
    with base_model.hub_online():
        assert check_huggingface(check, env) == []
    # tokenizer_model reads only these two fields of the step's params.
    params = cast(
        sdg.SdgParams, SimpleNamespace(baseModel=BaseModelParams(**hf_model(TAG)), caBundle=None)
    )
    folder = sdg.tokenizer_model(params, tmp_path)
    assert (folder / "config.json").is_file()
    assert hf_constants.HF_HUB_OFFLINE is True
