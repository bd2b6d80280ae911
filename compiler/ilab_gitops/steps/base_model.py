"""Bring the base model into the prepare step's output: from S3, Hugging Face or a PVC.

Training and evaluation read `<prepare>/model` from the run's workspace volume; the base
model PVC is mounted only in the prepare pod, so a PVC model is copied too (recording just
its path would leave the training pods without a model).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.s3.transfer import TransferConfig

from ilab_gitops.steps.archive import member_parts
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.s3 import S3Client

log = logging.getLogger(__name__)

MiB = 1024 * 1024
COPY_CHUNK = 8 * MiB
# Bounded memory: at most max_concurrency * chunk in flight per file.
TRANSFER = TransferConfig(
    multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=8
)


def _relative_key(key: str, prefix: str) -> str | None:
    rel = key[len(prefix) :].lstrip("/")
    if not rel or key.endswith("/"):
        return None  # the prefix itself or a "folder" placeholder object
    try:
        parts = member_parts(rel)
    except StepError:
        raise StepError(f"s3 key {key!r} would be written outside the model folder") from None
    return "/".join(parts)


def fetch_s3_prefix(client: S3Client, bucket: str, prefix: str, dest: Path) -> list[str]:
    """Download every object under `prefix/` into `dest`, keeping relative paths."""
    norm = prefix.strip("/") + "/"
    paginator = client.get_paginator("list_objects_v2")
    fetched: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=norm):
        for obj in page.get("Contents", []):
            rel = _relative_key(obj["Key"], norm)
            if rel is None:
                continue
            target = dest / PurePosixPath(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target), Config=TRANSFER)
            fetched.append(rel)
    if not fetched:
        raise StepError(f"no objects under s3://{bucket}/{norm} (base model prefix)")
    log.info("downloaded %d objects from s3://%s/%s", len(fetched), bucket, norm)
    return sorted(fetched)


@contextmanager
def hub_online() -> Iterator[None]:
    """The step's own Hub calls, online in an image that sets HF_HUB_OFFLINE=1 for a library
    (the sdg image: docling must use its baked-in models, never download them). The Hub
    client reads `constants.HF_HUB_OFFLINE` per call; it is restored afterwards."""
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline


def fetch_huggingface(repo: str, revision: str, token: str | None, dest: Path) -> str:
    """snapshot_download into `dest` (HF_ENDPOINT selects a mirror); returns the revision."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        snapshot_download(repo_id=repo, revision=revision, token=token, local_dir=dest)
    except RepositoryNotFoundError:
        raise StepError(
            f"Hugging Face repo {repo} not found (or the token cannot read it)"
        ) from None
    except RevisionNotFoundError:
        raise StepError(f"Hugging Face repo {repo} has no revision {revision}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise StepError(
                f"Hugging Face rejected the token for {repo}@{revision} (HTTP {status}): "
                "check the token in the baseModel Secret (HF_TOKEN)"
            ) from None
        # The library's message spans several lines (URL, docs link, server message); the
        # step contract is one line, which Kubernetes shows as the termination message.
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise StepError(f"Hugging Face download of {repo}@{revision} failed: {detail}") from None
    # snapshot_download keeps its metadata cache inside local_dir; it is not part of the model.
    shutil.rmtree(dest / ".cache", ignore_errors=True)
    return revision


def _copy_file(source: Path, dest: Path) -> None:
    """Copy one regular file without following a link at the last component."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(source, flags), "rb") as src, dest.open("xb") as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)


def copy_pvc(source: Path, dest: Path) -> int:
    """Copy the model folder `source` (on the read-only base model PVC) into `dest`.

    The folder is walked without following links. A symlink is copied as the file it names
    only when that file lies inside `source`; one pointing anywhere else (`../../etc`,
    `/proc/self/root`, another model on the claim) or at a folder stops the step: copying
    it would put files from outside the model into the run. Returns the number of files.
    """
    if source.is_symlink() or not source.is_dir():
        raise StepError(
            f"base model path {source} does not exist on the mounted PVC (or is a link)"
        )
    root = os.path.realpath(source)
    if root != os.path.abspath(source):  # e.g. models -> / on the claim: not the model
        raise StepError(
            f"base model path {source} passes through a symlink on the PVC: name the real folder"
        )
    copied = 0

    def unreadable(err: OSError) -> None:
        raise StepError(f"base model folder cannot be read: {err.strerror}: {err.filename}")

    for folder, dirs, files in os.walk(source, followlinks=False, onerror=unreadable):
        base = Path(folder)
        rel_folder = base.relative_to(source)
        (dest / rel_folder).mkdir(parents=True, exist_ok=True)
        for name in sorted(files) + sorted(d for d in dirs if (base / d).is_symlink()):
            path = base / name
            rel = (rel_folder / name).as_posix()
            info = path.lstat()
            target = path
            if stat.S_ISLNK(info.st_mode):
                resolved = os.path.realpath(path)
                if os.path.commonpath([resolved, root]) != root:
                    raise StepError(
                        f"base model file {rel} is a symlink to {os.readlink(path)!r}, outside "
                        f"baseModel.pvc.path: put the real files in the model folder"
                    )
                target = Path(resolved)
                info = target.lstat()
            if not stat.S_ISREG(info.st_mode):
                kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                link = " (through a symlink)" if target is not path else ""
                raise StepError(f"base model file {rel} is {kind}{link}: only files are copied")
            try:
                _copy_file(target, dest / rel_folder / name)
            except OSError as err:
                raise StepError(f"base model file {rel} cannot be copied: {err.strerror}") from None
            copied += 1
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
    log.info("copied %d files from %s", copied, source)
    return copied


def check_model_dir(path: Path) -> dict[str, Any]:
    """A Hugging Face model folder needs config.json and a tokenizer with a chat template."""
    if not (path / "config.json").is_file():
        raise StepError(f"base model at {path} has no config.json (not a Hugging Face model)")
    tokenizer_config = path / "tokenizer_config.json"
    has_template = (path / "chat_template.jinja").is_file() or (
        tokenizer_config.is_file() and "chat_template" in tokenizer_config.read_text("utf-8")
    )
    if not has_template:
        raise StepError(
            f"base model at {path} has no chat template (tokenizer_config.json "
            "chat_template or chat_template.jinja); data processing needs one"
        )
    return {"configJson": True, "chatTemplate": True}
