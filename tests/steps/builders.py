"""Build SDG tarballs and params files for the step tests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]


def sdg_jsonl(count: int, topic: str) -> bytes:
    rows = []
    for i in range(count):
        msgs = [dict(m) for m in MESSAGES]
        msgs[1]["content"] = f"{topic} question {i}: what is photosynthesis?"
        rows.append({"messages": msgs, "metadata": "{}", "id": f"{topic}-{i}"})
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def sdg_members(extra: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    members = {
        "data/knowledge_train_msgs_2026-01-01T00_00_00.jsonl": sdg_jsonl(8, "knowledge"),
        "data/skills_train_msgs_2026-01-01T00_00_00.jsonl": sdg_jsonl(8, "skills"),
        "model/README.md": b"placeholder left by SDG\n",
        "taxonomy/compositional_skills/writing/qna.yaml": b"version: 2\nseed_examples: []\n",
    }
    members.update(extra or {})
    return members


def tar_bytes(
    files: Mapping[str, bytes],
    *,
    extra: Iterable[tarfile.TarInfo] = (),
    mode: str = "w:gz",
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


def link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_params(path: Path, params: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(params, indent=2), encoding="utf-8")
    return path


def base_params(tmp: Path, step: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gitops.instructlab.ai/v1alpha1",
        "run": "r1",
        "step": step,
        "stepName": f"r1-{step}-0123abcd",
        "outputPath": str(tmp / "workspace" / "steps" / f"r1-{step}-0123abcd"),
        "attempt": [0, 0],
        **extra,
    }
