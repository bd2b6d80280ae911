"""A small OpenAI-compatible server for a local causal LM, run as a real child process.

It takes vLLM's API-server arguments (`--host --port --model --served-model-name ...
--tensor-parallel-size --gpu-memory-utilization`), loads the model with transformers (greedy
decoding on CPU) and answers `/v1/models`, `/v1/chat/completions` and `/v1/completions`, so
`serving.serve_vllm` can be tested end to end with this script as its launcher.
`GET /debug/args` returns the parsed arguments. Knobs for the process-handling tests:
`--ignore-sigterm`, `--child-pidfile PATH` (fork a child in the same process group that
sleeps, and write its pid), `--never-ready` (`/v1/models` answers 503).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_NEW_TOKENS = 16


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", nargs="+", required=True)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--child-pidfile", type=Path)
    parser.add_argument("--never-ready", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.child_pidfile is not None:
        # Like vLLM's engine processes: a child in our process group, not waited for.
        child = subprocess.Popen(
            [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"],
            stdin=subprocess.DEVNULL,
        )
        args.child_pidfile.write_text(str(child.pid), encoding="utf-8")

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    print(f"loading {args.model}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    model.eval()
    names: list[str] = args.served_model_name

    def generate(prompt: str, max_tokens: int) -> tuple[str, int, int]:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(
                ids,
                max_new_tokens=max(1, min(max_tokens, MAX_NEW_TOKENS)),
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[0, ids.shape[1] :]
        return tokenizer.decode(new, skip_special_tokens=True), int(ids.shape[1]), len(new)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *largs: Any) -> None:
            print(f"{self.command} {self.path}", flush=True)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                if args.never_ready:
                    self._send(503, {"error": {"message": "still loading"}})
                    return
                data = [{"id": n, "object": "model", "owned_by": "test"} for n in names]
                self._send(200, {"object": "list", "data": data})
            elif self.path == "/debug/args":
                self._send(200, {k: str(v) for k, v in vars(args).items()})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            if body.get("model") not in names:
                self._send(404, {"error": {"message": f"model {body.get('model')!r} not served"}})
                return
            max_tokens = int(body.get("max_tokens") or MAX_NEW_TOKENS)
            if self.path == "/v1/chat/completions":
                prompt = tokenizer.apply_chat_template(
                    body["messages"], tokenize=False, add_generation_prompt=True
                )
                text, used, made = generate(prompt, max_tokens)
                choice: dict[str, Any] = {"message": {"role": "assistant", "content": text}}
                kind = "chat.completion"
            elif self.path == "/v1/completions":
                text, used, made = generate(str(body["prompt"]), max_tokens)
                choice = {"text": text}
                kind = "text_completion"
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            choice.update(index=0, finish_reason="length" if made >= max_tokens else "stop")
            usage = {"prompt_tokens": used, "completion_tokens": made, "total_tokens": used + made}
            reply = {"id": "x1", "object": kind, "created": 0, "model": body["model"]}
            self._send(200, {**reply, "choices": [choice], "usage": usage})

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"serving {names} on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
