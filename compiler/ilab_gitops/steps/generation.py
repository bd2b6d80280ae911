"""The one call that generates: instructlab-sdg's `generate_data` against the teacher.

Kept apart from `sdg.py` (clone, resume, pack, upload) because it is the only part that needs
the library (and docling, which it imports) and a live teacher. What the library writes is
reduced to what prepare reads: `knowledge_train_msgs_<date>.jsonl` and
`skills_train_msgs_<date>.jsonl` in `data/`, plus the library's own test/messages files.

The library takes one `model_name` for two things: the model id it sends to the teacher, and
the path of a local model folder whose tokenizer sizes the knowledge document chunks
(`teacher_model_path`). ilab-on-ocp symlinks the base model under the teacher's name in the
working directory; this does the same inside the step's own work folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.teacher import Teacher, verify

log = logging.getLogger(__name__)

#: As ilab-on-ocp's sdg_op passes them (`ilab data generate` defaults).
CHUNK_WORD_COUNT = 1000
SERVER_CTX_SIZE = 4096
MAX_RETRIES = 2
_SAFE_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
KEEP = ("knowledge_train_msgs_*.jsonl", "skills_train_msgs_*.jsonl", "test_*.jsonl")


@dataclass(frozen=True)
class Request:
    teacher: Teacher
    ca_bundle: str | None
    taxonomy: Path
    base_branch: str
    output: Path  # data/ of the tarball; created here
    work: Path  # scratch: the library's intermediate files
    pipeline: Literal["simple", "full"]
    num_instructions: int
    batch_size: int
    num_workers: int
    timeout_s: float
    tokenizer_model: Path | None = None  # a model folder (config, tokenizer, weights)


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _model_alias(request: Request) -> None:
    """`<work>/<teacher model name>` -> the tokenizer model, for the library's double use."""
    name = request.teacher.model
    if request.tokenizer_model is None:
        return
    if not _SAFE_MODEL.match(name):
        raise StepError(
            f"teacher model name {name[:80]!r} cannot name a local folder "
            "(letters, digits, . _ - and at most one /)"
        )
    alias = request.work / name
    alias.parent.mkdir(parents=True, exist_ok=True)
    alias.symlink_to(request.tokenizer_model.resolve(), target_is_directory=True)


def _teacher_error(request: Request, exc: BaseException) -> StepError:
    import openai

    where = f"teacher {request.teacher.endpoint}"
    if isinstance(exc, openai.APITimeoutError):
        return StepError(f"{where}: no answer within {request.timeout_s:g}s")
    if isinstance(exc, openai.APIConnectionError):
        return StepError(f"{where}: unreachable during generation")
    if isinstance(exc, openai.APIStatusError):
        return StepError(f"{where}: answered HTTP {exc.status_code} during generation")
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return StepError(f"{where}: generation failed: {type(exc).__name__}: {text}")


def generate(request: Request) -> list[str]:
    """Run the library; the files it wrote into `request.output`, sorted."""
    import httpx
    import openai
    from instructlab.sdg.generate_data import generate_data

    request.work.mkdir(parents=True, exist_ok=True)
    _model_alias(request)
    http = httpx.Client(verify=verify(request.ca_bundle), timeout=request.timeout_s)
    client = openai.OpenAI(
        base_url=request.teacher.endpoint,
        api_key=request.teacher.api_key,
        http_client=http,
        max_retries=MAX_RETRIES,
        timeout=request.timeout_s,
    )
    raw = request.work / "generated"
    try:
        with _inside(request.work), http:
            generate_data(
                client=client,
                logger=log,
                use_legacy_pretraining_format=False,
                model_name=request.teacher.model,
                num_cpus=request.num_workers,
                num_instructions_to_generate=request.num_instructions,
                taxonomy=str(request.taxonomy),
                taxonomy_base=f"origin/{request.base_branch}",
                output_dir=str(raw),
                console_output=False,
                chunk_word_count=CHUNK_WORD_COUNT,
                server_ctx_size=SERVER_CTX_SIZE,
                pipeline=request.pipeline,
                batch_size=request.batch_size,
            )
    except StepError:
        raise
    except Exception as exc:  # the library wraps teacher errors in its own types
        cause: BaseException = exc
        while cause.__cause__ is not None and not isinstance(cause, openai.OpenAIError):
            cause = cause.__cause__
        raise _teacher_error(request, cause) from None
    request.output.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    for pattern in KEEP:
        for path in sorted(raw.glob(pattern)):
            shutil.move(path, request.output / path.name)
            kept.append(path.name)
    for phase, what in (("knowledge", "phase 1"), ("skills", "phase 2")):
        if not any(name.startswith(f"{phase}_train_msgs_") for name in kept):
            raise StepError(
                f"the library wrote no {phase}_train_msgs file: {what} of training needs "
                f"a changed {phase} qna.yaml in the taxonomy commit (found {', '.join(kept)})"
            )
    return sorted(kept)
