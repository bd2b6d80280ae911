"""A minimal OpenAI-compatible server on 127.0.0.1 (chat/completions, completions, models).

`reply(model, messages)` decides each chat answer, so one class plays both the candidate
(answers that name the checkpoint) and the judge (a "Rating: [[x]]" verdict read from the
answer it is shown). Every request is recorded for assertions.

`/v1/completions` is the legacy completions API as vLLM serves it, which is what lm-eval's
`local-completions` model calls for loglikelihood (multiple-choice) tasks: `prompt` is a
string, a list of strings, a list of token ids or a list of those; with `echo: true` the
prompt's tokens come back first in `choices[i].logprobs` (`tokens`, `token_logprobs` with
None for the first token, `top_logprobs`, `text_offset`), then `max_tokens` generated ones.
It needs a `Scorer`: the model's tokenizer (ids <-> text) and a deterministic `logprob`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Reply = Callable[[str, list[dict[str, Any]]], str]
# logprob(model, prefix, token): the model's log-probability of `token` (its text) coming
# next after the text `prefix`, as a causal language model would give it.
Logprob = Callable[[str, str, str], float]


@dataclass(frozen=True)
class Scorer:
    tokenizer: Any  # a transformers tokenizer: encode(), decode(), eos_token_id
    logprob: Logprob


def completion_choice(
    scorer: Scorer, reply: Reply, body: dict[str, Any], index: int, prompt: str | list[int]
) -> tuple[dict[str, Any], int, int]:
    """One choice of a legacy completion, with its prompt and completion token counts.

    The first token has no logprob (nothing precedes it), as in the OpenAI API; `text_offset`
    counts characters from the start of the prompt, echoed or not.
    """
    tok = scorer.tokenizer
    model = str(body["model"])
    ids = list(prompt) if isinstance(prompt, list) else tok.encode(prompt, add_special_tokens=False)
    limit = body.get("max_tokens")
    max_tokens = 16 if limit is None else int(limit)
    answer = reply(model, [{"role": "user", "content": tok.decode(ids)}])
    generated = [*tok.encode(answer, add_special_tokens=False), tok.eos_token_id][:max_tokens]
    pieces = [tok.decode([t]) for t in ids + generated]
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    text = "".join(pieces)
    scores: list[float | None] = [None] + [
        scorer.logprob(model, text[: offsets[i]], pieces[i]) for i in range(1, len(pieces))
    ]
    first = 0 if body.get("echo") else len(ids)
    logprobs = None
    if body.get("logprobs") is not None:
        logprobs = {
            "tokens": pieces[first:],
            "token_logprobs": scores[first:],
            # The top-N alternatives: a fake has none, so only the token shown (lm-eval's
            # is_greedy is then always true; the `acc` metric does not read it).
            "top_logprobs": [
                None if score is None else {piece: score}
                for piece, score in zip(pieces[first:], scores[first:], strict=True)
            ],
            "text_offset": offsets[first:],
        }
    choice = {
        "index": index,
        "text": "".join(pieces[first:]),
        "logprobs": logprobs,
        "finish_reason": "length" if len(generated) == max_tokens else "stop",
    }
    return choice, len(ids), len(generated)


class FakeOpenAI:
    def __init__(
        self, reply: Reply, *, api_key: str | None = None, scorer: Scorer | None = None
    ) -> None:
        self.reply = reply
        self.api_key = api_key
        #: What GET /v1/models lists (behind the API key, as the OpenAI API has it).
        self.models = ["fake"]
        self.scorer = scorer
        #: Answer /v1/completions with `reply` text, one choice per prompt and `n` (as vLLM
        #: does for instructlab-sdg's LLMBlocks), instead of the scored path above.
        self.text_completions = False
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if fake.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return True
                self._send(401, {"error": {"message": "bad token", "type": "auth"}})
                return False

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    if not self._authorized():
                        return
                    data = [{"id": m, "object": "model"} for m in fake.models]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "body": body})
                if self.path == "/v1/chat/completions":
                    text = fake.reply(body["model"], body["messages"])
                    self._send(
                        200,
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text},
                                }
                            ],
                            "usage": {
                                "prompt_tokens": 1,
                                "completion_tokens": 1,
                                "total_tokens": 2,
                            },
                        },
                    )
                elif self.path == "/v1/completions" and fake.text_completions:
                    fake._send_text_completion(self, body)
                elif self.path == "/v1/completions" and fake.scorer is not None:
                    try:
                        result = fake.complete(body)
                    except Exception as exc:  # a test's scorer failed: say so, don't hang up
                        self._send(500, {"error": {"message": repr(exc), "type": "fake"}})
                        raise
                    self._send(200, result)
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def completion_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/completions"]

    def _send_text_completion(self, handler: Any, body: dict[str, Any]) -> None:
        prompt = body.get("prompt", "")
        prompts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
        n = int(body.get("n") or 1)
        texts = [
            self.reply(str(body["model"]), [{"role": "user", "content": p}])
            for p in prompts
            for _ in range(n)
        ]
        handler._send(
            200,
            {
                "id": "cmpl-t",
                "object": "text_completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": i, "text": t, "logprobs": None, "finish_reason": "stop"}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.scorer is not None
        prompt = body["prompt"]
        # A string, a list of token ids, or a batch of either.
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            prompts = [prompt]
        else:
            prompts = list(prompt)
        results = [
            completion_choice(self.scorer, self.reply, body, i, p) for i, p in enumerate(prompts)
        ]
        prompt_tokens = sum(r[1] for r in results)
        completion_tokens = sum(r[2] for r in results)
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": [r[0] for r in results],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


@contextlib.contextmanager
def serving(fake: FakeOpenAI) -> Iterator[str]:
    yield fake.url


def use_as_judge(env: Any, judge: FakeOpenAI, endpoint: str | None = None) -> None:
    """Point the eval steps' judge Secret variables at `judge` (`env` is pytest's monkeypatch)."""
    env.setenv("ILAB_JUDGE_ENDPOINT", endpoint if endpoint is not None else judge.url)
    env.setenv("ILAB_JUDGE_MODEL_NAME", "judge-model")
    env.setenv("ILAB_JUDGE_API_TOKEN", judge.api_key or "")


def recording_server(
    url: str, served: list[tuple[str, Path]]
) -> Callable[[Path, str], contextlib.AbstractContextManager[str]]:
    """A stand-in for the steps' `serve(model, name)`: records what would be served, at `url`."""

    @contextlib.contextmanager
    def serve(model: Path, name: str) -> Iterator[str]:
        served.append((name, model))
        yield url

    return serve
