"""The sdg step around the library: teacher preflight, taxonomy clone, pack, write-once
upload, resume, and prepare reading the result with its real data processing.

The teacher is tests/steps/openai_fake.py on 127.0.0.1, the taxonomy a real git repository
made by the test, S3 the local moto server. `generation.generate` (the library call) is
replaced here by a function that writes what the library writes, so these tests cover the
step's own contract; test_sdg_library.py runs the real library where it is installed.
"""

from __future__ import annotations

import json
import socket
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.manifests.compile import compile_run
from ilab_gitops.steps import generation, prepare, sdg, teacher
from ilab_gitops.steps.markers import read_marker
from ilab_gitops.steps.runtime import StepError
from tests.steps.builders import base_params, sdg_jsonl, write_params
from tests.steps.conftest import S3Env
from tests.steps.openai_fake import FakeOpenAI
from tests.steps.taxonomy_repo import KNOWLEDGE, SKILL, TaxonomyRepo, make_taxonomy
from tests.support.sdgspecs import generate_run
from tests.support.specs import ENVIRONMENTS, ROOT, load_environment

PREFIX = "ilab-runs/kind/ilab-dev/r1"
KEY = "test-key"


def answer(model: str, messages: list[dict[str, Any]]) -> str:
    return "unused"


@pytest.fixture
def teacher_server() -> Any:
    with FakeOpenAI(answer, api_key=KEY) as fake:
        fake.models = ["teacher-model", "other"]
        yield fake


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory: pytest.TempPathFactory) -> TaxonomyRepo:
    return make_taxonomy(tmp_path_factory.mktemp("taxonomy"))


def use_teacher(monkeypatch: pytest.MonkeyPatch, url: str, *, key: str = KEY) -> None:
    monkeypatch.setenv("ILAB_TEACHER_ENDPOINT", url)
    monkeypatch.setenv("ILAB_TEACHER_MODEL_NAME", "teacher-model")
    monkeypatch.setenv("ILAB_TEACHER_API_TOKEN", key)


def params_file(tmp_path: Path, taxonomy: TaxonomyRepo, tiny_model: Path, **extra: Any) -> Path:
    raw = base_params(
        tmp_path,
        "sdg",
        taxonomy={"repoUrl": taxonomy.url, "commit": taxonomy.commit, "baseBranch": "main"},
        baseModel={"source": "pvc", "path": str(tiny_model)},
        pipeline="simple",
        numInstructions=3,
        batchSize=8,
        numWorkers=1,
        destinationPrefix=PREFIX,
        caBundle=None,
        teacherCaBundle=None,
        requestTimeoutSeconds=5,
        **{"preflight": {"secrets": [], "s3": []}, **extra},  # test_preflight.py: the checks
    )
    return write_params(tmp_path / "params.json", raw)


class FakeGeneration:
    """Writes what instructlab-sdg writes into data/, and records each call."""

    def __init__(self) -> None:
        self.calls: list[generation.Request] = []

    def __call__(self, request: generation.Request) -> list[str]:
        self.calls.append(request)
        request.output.mkdir(parents=True)
        names = [
            "knowledge_train_msgs_2026-12-04T20_00_00.jsonl",
            "skills_train_msgs_2026-12-04T20_00_00.jsonl",
        ]
        (request.output / names[0]).write_bytes(sdg_jsonl(6, "knowledge"))
        (request.output / names[1]).write_bytes(sdg_jsonl(4, "skills"))
        return names


@pytest.fixture
def fake_generation(monkeypatch: pytest.MonkeyPatch) -> FakeGeneration:
    fake = FakeGeneration()
    monkeypatch.setattr(generation, "generate", fake)
    return fake


@pytest.fixture
def output_env(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    for name, value in s3.env("OUTPUT").items():
        monkeypatch.setenv(name, value)
    return s3


@dataclass(frozen=True)
class Setup:
    tmp: Path
    taxonomy: TaxonomyRepo
    model: Path
    s3: S3Env
    generation: FakeGeneration
    params: Path


@pytest.fixture
def setup(
    tmp_path: Path,
    taxonomy: TaxonomyRepo,
    tiny_model: Path,
    output_env: S3Env,
    fake_generation: FakeGeneration,
) -> Setup:
    params = params_file(tmp_path, taxonomy, tiny_model)
    return Setup(tmp_path, taxonomy, tiny_model, output_env, fake_generation, params)


def tar_names(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "check.tar"
    path.write_bytes(data)
    with tarfile.open(path) as tar:
        return tar.getnames()


# --- preflight ----------------------------------------------------------------------------


def test_preflight_lists_the_model(teacher_server: FakeOpenAI) -> None:
    got = teacher.preflight(teacher.Teacher(teacher_server.url, "teacher-model", KEY), None)
    assert got == ["teacher-model", "other"]


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ("teacher-model", "wrong", "GET /models refused the API key (HTTP 401)"),
        ("missing", KEY, "does not serve model 'missing' (it lists 'teacher-model', 'other')"),
    ],
)
def test_preflight_names_endpoint_and_problem(
    teacher_server: FakeOpenAI, model: str, key: str, message: str
) -> None:
    with pytest.raises(StepError) as err:
        teacher.preflight(teacher.Teacher(teacher_server.url, model, key), None)
    text = str(err.value)
    assert text.startswith(f"teacher {teacher_server.url}") and message in text
    assert "\n" not in text and "wrong" not in text


def test_preflight_of_a_teacher_that_is_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(StepError, match=rf"^teacher {url}: unreachable"):
        teacher.preflight(teacher.Teacher(url, "m", KEY), None)


def test_preflight_of_a_teacher_that_never_answers() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts the connection, never answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        with pytest.raises(StepError, match=r"no answer to GET /models within 0.5s"):
            teacher.preflight(teacher.Teacher(url, "m", KEY), None, timeout_s=0.5)


def test_missing_ca_bundle_is_named(teacher_server: FakeOpenAI, tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"teacher: CA bundle .* is not mounted"):
        teacher.preflight(
            teacher.Teacher(teacher_server.url, "teacher-model", KEY), str(tmp_path / "ca.crt")
        )


def test_endpoint_must_be_the_api_root(monkeypatch: pytest.MonkeyPatch) -> None:
    use_teacher(monkeypatch, "http://127.0.0.1:1/")
    with pytest.raises(StepError, match="must end in /v1"):
        teacher.teacher_from_env()


# --- the step -----------------------------------------------------------------------------


def test_generates_packs_uploads_and_prepare_reads_it(
    setup: Setup, teacher_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, taxonomy, tiny_model, output_env = setup.tmp, setup.taxonomy, setup.model, setup.s3
    fake_generation, params = setup.generation, setup.params
    use_teacher(monkeypatch, teacher_server.url)
    assert sdg.main(["--params", str(params)]) == 0
    (call,) = fake_generation.calls
    assert (call.pipeline, call.num_instructions, call.batch_size) == ("simple", 3, 8)
    assert call.tokenizer_model == tiny_model  # a knowledge leaf changed: pvc base model
    out = tmp_path / "workspace" / "steps" / "r1-sdg-0123abcd"
    marker = read_marker(out)
    assert marker is not None
    assert marker.details["qna"] == sorted([KNOWLEDGE, SKILL])  # not the base's skill
    assert marker.details["resumed"] is False
    key = f"{PREFIX}/sdg/r1-sdg-0123abcd.tar"
    assert marker.details["uri"] == f"s3://{output_env.bucket}/{key}"
    obj = output_env.client.get_object(Bucket=output_env.bucket, Key=key)
    data = obj["Body"].read()
    assert obj["Metadata"]["sha256"] == marker.details["sha256"]
    names = tar_names(data, tmp_path)
    assert {"data", "model", "taxonomy", "taxonomy/.git", f"taxonomy/{KNOWLEDGE}"} <= set(names)
    assert not (out / "work").exists() and not (out / "sdg.tar").exists()

    # prepare reads it, as the compiler wires it: the output Secret and a fixed key.
    for name, value in output_env.env("SDG").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ILAB_SDG_DATA_KEY", key)
    prepared = base_params(
        tmp_path,
        "prepare",
        sdgData={"sha256": None, "caBundle": None},
        baseModel={"source": "pvc", "path": str(tiny_model)},
        taxonomy={"repoUrl": taxonomy.url, "commit": taxonomy.commit},
        maxSeqLen=256,
        preflight={"secrets": [], "s3": []},  # test_preflight.py covers the checks
    )
    assert prepare.main(["--params", str(write_params(tmp_path / "p.json", prepared))]) == 0
    prepare_marker = read_marker(tmp_path / "workspace" / "steps" / "r1-prepare-0123abcd")
    assert prepare_marker is not None
    assert prepare_marker.details["samples"] == {"knowledge": 6, "skills": 4}
    assert prepare_marker.details["taxonomy"]["head"] == taxonomy.commit


def test_rerun_after_upload_resumes_from_the_uploaded_tarball(
    setup: Setup, teacher_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path, fake_generation, params = setup.tmp, setup.generation, setup.params
    use_teacher(monkeypatch, teacher_server.url)
    assert sdg.main(["--params", str(params)]) == 0
    out = tmp_path / "workspace" / "steps" / "r1-sdg-0123abcd"
    first = read_marker(out)
    assert first is not None
    # The pod died after the upload, before its marker: the folder is gone, the object stays.
    import shutil

    shutil.rmtree(out)
    assert sdg.main(["--params", str(params)]) == 0
    second = read_marker(out)
    assert second is not None
    assert len(fake_generation.calls) == 1  # no second generation
    assert second.details["resumed"] is True
    assert second.details["sha256"] == first.details["sha256"]
    assert second.files == first.files  # the same data/, byte for byte


def test_a_different_object_at_the_key_is_never_overwritten(
    setup: Setup,
    teacher_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp_path, output_env = setup.tmp, setup.s3
    use_teacher(monkeypatch, teacher_server.url)
    key = f"{PREFIX}/sdg/r1-sdg-0123abcd.tar"
    output_env.client.put_object(Bucket=output_env.bucket, Key=key, Body=b"someone else's")
    assert sdg.main(["--params", str(setup.params)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite" in err[0]
    body = output_env.client.get_object(Bucket=output_env.bucket, Key=key)["Body"].read()
    assert body == b"someone else's"
    assert not (tmp_path / "workspace" / "steps" / "r1-sdg-0123abcd").exists()


def test_teacher_down_fails_before_cloning(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    use_teacher(monkeypatch, url)
    assert sdg.main(["--params", str(setup.params)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: teacher {url}: unreachable")
    assert setup.generation.calls == []
    assert not (setup.tmp / "workspace" / "steps").exists()


def test_later_steps_needs_are_checked_before_the_teacher(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """sdg is the run's first step: a missing judge key and an output bucket that does not
    exist stop it in seconds, before the teacher is asked (here it is down, and that is not
    what the step reports) or the taxonomy cloned."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        use_teacher(monkeypatch, f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
    monkeypatch.setenv("ILAB_OUTPUT_BUCKET", "gone")
    checks = {
        "secrets": [
            {"env": "ILAB_JUDGE_ENDPOINT", "secretKeyRef": {"name": "judge", "key": "endpoint"}}
        ],
        "s3": [{"field": "output.secretRef", "prefix": "OUTPUT", "secretRef": {"name": "out"}}],
    }
    monkeypatch.delenv("ILAB_JUDGE_ENDPOINT", raising=False)
    params = params_file(setup.tmp, setup.taxonomy, setup.model, preflight=checks)
    assert sdg.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: preflight found 2 problem(s) before any download:",
        "  secret judge: key endpoint is missing or empty (env ILAB_JUDGE_ENDPOINT)",
        f"  output.secretRef (secret out): bucket 'gone' at {setup.s3.endpoint} does not exist",
    ]
    assert setup.generation.calls == []
    assert not (setup.tmp / "workspace" / "steps").exists()


def test_commit_without_qna_changes_is_refused(tmp_path: Path, taxonomy: TaxonomyRepo) -> None:
    spec = sdg.TaxonomyParams(repoUrl=taxonomy.url, commit=taxonomy.base, baseBranch="main")
    with pytest.raises(StepError, match=r"changes no qna\.yaml against 'main'"):
        sdg.clone_taxonomy(spec, tmp_path / "t", None)
    spec = sdg.TaxonomyParams(repoUrl=taxonomy.url, commit="1" * 40, baseBranch="main")
    with pytest.raises(StepError, match=rf"has no commit {'1' * 40}"):
        sdg.clone_taxonomy(spec, tmp_path / "u", None)
    spec = sdg.TaxonomyParams(repoUrl=taxonomy.url, commit=taxonomy.commit, baseBranch="dev")
    with pytest.raises(StepError, match="has no branch 'dev'"):
        sdg.clone_taxonomy(spec, tmp_path / "v", None)


def test_pack_is_deterministic(tmp_path: Path) -> None:
    for root in (tmp_path / "a", tmp_path / "b"):
        for name in ("data", "model", "taxonomy/x"):
            (root / name).mkdir(parents=True)
        (root / "data" / "k.jsonl").write_text("{}\n")
    first = sdg.pack(tmp_path / "a", tmp_path / "a.tar")
    second = sdg.pack(tmp_path / "b", tmp_path / "b.tar")
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


@pytest.mark.parametrize("env_path", ENVIRONMENTS, ids=lambda p: p.stem)
def test_compiled_params_parse_and_keys_agree(env_path: Path) -> None:
    manifests = compile_run(generate_run(), load_environment(env_path))
    step = manifests.steps[0]
    (cm,) = [o for o in step.objects if o["kind"] == "ConfigMap" and "data" in o]
    params = sdg.SdgParams.model_validate(json.loads(cm["data"]["params.json"]))
    (job,) = [o for o in manifests.steps[1].objects if o["kind"] == "Job"]
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ILAB_SDG_DATA_KEY"]["value"] == sdg.object_key(
        params.destinationPrefix, params.stepName
    )
    assert (ROOT / "runtime_images" / "sdg" / "Containerfile").is_file()
