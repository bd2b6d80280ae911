"""mt_bench: instructlab-eval's real MT-Bench code against local candidate and judge servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.results.model import CheckpointScore
from ilab_gitops.steps import mt_bench
from ilab_gitops.steps.outputs import MtBenchOutput
from ilab_gitops.steps.progress import Progress, progress_path
from ilab_gitops.steps.runtime import StepError
from tests.steps.builders import base_params, write_params
from tests.steps.openai_fake import FakeOpenAI, recording_server, use_as_judge
from tests.steps.test_train import fake_checkpoint
from tests.support.kube_api_fake import Grant, start

JUDGE_TOKEN = "judge-token-123"
SCORES = {100: 5, 200: 8, 300: 8}  # a tie: the later checkpoint must win


def candidate_reply(model: str, messages: list[dict[str, Any]]) -> str:
    return f"Answer by {model}."


def judge_reply(model: str, messages: list[dict[str, Any]]) -> str:
    text = "\n".join(m["content"] for m in messages)
    match = re.search(r"Answer by samples_(\d+)", text)
    return f"Rating: [[{SCORES[int(match.group(1))]}]]" if match else "no idea"


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(judge_reply, api_key=JUDGE_TOKEN) as server:
        use_as_judge(monkeypatch, server)
        monkeypatch.setenv("INSTRUCTLAB_EVAL_FIRST_N_QUESTIONS", "2")
        yield server


def make_params(tmp_path: Path, merge: bool = True) -> mt_bench.MtBenchParams:
    hf = tmp_path / "train2" / "checkpoints" / "hf_format"
    for n in SCORES:
        fake_checkpoint(hf / f"samples_{n}")
    raw = base_params(
        tmp_path,
        "eval-mt-bench",
        checkpointsPath=str(hf),
        maxWorkers=2,
        mergeSystemUserMessage=merge,
    )
    return mt_bench.MtBenchParams.model_validate(raw)


def test_scores_every_checkpoint_and_picks_the_best(tmp_path: Path, judge: FakeOpenAI) -> None:
    served: list[tuple[str, Path]] = []
    with FakeOpenAI(candidate_reply) as candidate:
        params = make_params(tmp_path)
        mt_bench.evaluate(params, serve=recording_server(candidate.url, served))

    assert [name for name, _ in served] == ["samples_100", "samples_200", "samples_300"]
    out = MtBenchOutput.model_validate_json((params.output / "mt_bench.json").read_bytes())
    assert out.result.bestCheckpoint == "samples_300"
    assert [(c.checkpoint, c.score) for c in out.result.checkpoints] == [
        ("samples_100", 5.0),
        ("samples_200", 8.0),
        ("samples_300", 8.0),
    ]
    assert out.candidatePath.endswith("hf_format/samples_300")
    assert out.judgeModel == "judge-model"
    # Two questions, two turns each, three checkpoints: the real evaluator asked for it all.
    assert len(candidate.chat_requests()) == 2 * 2 * 3
    judged = judge.chat_requests()
    assert len(judged) == 2 * 2 * 3
    assert {r["model"] for r in judged} == {"judge-model"}
    assert all(m["role"] != "system" for r in judged for m in r["messages"])  # merged
    assert sorted(p.name for p in params.output.iterdir()) == [
        ".done.json",
        "mt_bench.json",
        "mt_bench_samples_100.json",
        "mt_bench_samples_200.json",
        "mt_bench_samples_300.json",
    ]
    # Progress beside the output folder: all checkpoints done, the chosen one as the best.
    progress = Progress.model_validate_json(progress_path(params.output).read_bytes())
    assert (progress.checkpointsDone, progress.checkpointsTotal) == (3, 3)
    assert (progress.bestCheckpoint, progress.bestScore) == ("samples_300", 8.0)
    assert progress.describe() == "checkpoint 3/3, 100 %"


def test_ties_go_to_the_higher_sample_count() -> None:
    scores = [
        CheckpointScore(checkpoint=f"samples_{n}", samples=n, score=s)
        for n, s in ((300, 7.0), (100, 7.5), (200, 7.5))
    ]
    assert mt_bench.pick_best(scores).checkpoint == "samples_200"


def test_judge_endpoint_must_end_in_v1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ILAB_JUDGE_ENDPOINT", "https://judge.example.com/api")
    monkeypatch.setenv("ILAB_JUDGE_MODEL_NAME", "m")
    monkeypatch.setenv("ILAB_JUDGE_API_TOKEN", "t")
    path = write_params(tmp_path / "p.json", make_params(tmp_path).model_dump())
    assert mt_bench.main(["--params", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: judge endpoint 'https://judge.example.com/api' must end in /v1 "
        "(the OpenAI-compatible API root, e.g. https://judge.example.com/v1)"
    )


def test_missing_judge_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILAB_JUDGE_ENDPOINT", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("ILAB_JUDGE_MODEL_NAME", raising=False)
    with pytest.raises(
        StepError,
        match=re.escape(
            "ILAB_JUDGE_MODEL_NAME is not set: add key "
            "'model_name' to the evaluation.judgeSecretRef Secret"
        ),
    ):
        mt_bench.evaluate(make_params(tmp_path))


def test_judge_ca_bundle_must_be_pem(tmp_path: Path) -> None:
    from ilab_gitops.steps.judge import http_client

    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    with pytest.raises(StepError, match="is not a PEM certificate"):
        http_client(str(bad))
    with pytest.raises(StepError, match="is not mounted"):
        http_client(str(tmp_path / "missing.crt"))


def test_progress_reaches_the_steps_configmap_with_commit_status_progress(
    tmp_path: Path, judge: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the pod's progress token (Environment commitStatusProgress), the step patches
    its own progress ConfigMap through the Kubernetes API: at the start, then the end at
    once; the checkpoints between come sooner than the 15-minute spacing."""
    params = make_params(tmp_path)
    name = f"{params.stepName}-progress"
    api = start(tmp_path / "tls")
    try:
        api.grants["progress-token"] = Grant("ilab", frozenset({name}))
        api.configmaps[("ilab", name)] = {"apiVersion": "v1", "kind": "ConfigMap"}
        folder = api.token_dir(tmp_path / "token", "progress-token", "ilab")
        host, port = api.url()
        monkeypatch.setenv("ILAB_PROGRESS_TOKEN_DIR", str(folder))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        with FakeOpenAI(candidate_reply) as candidate:
            mt_bench.evaluate(params, serve=recording_server(candidate.url, []))
    finally:
        api.stop()
    assert [p["data"]["description"] for p in api.patches] == [
        "checkpoint 0/3, 0 %",
        "checkpoint 3/3, 100 %",
    ]
    assert api.configmaps[("ilab", name)]["data"] == {"description": "checkpoint 3/3, 100 %"}
