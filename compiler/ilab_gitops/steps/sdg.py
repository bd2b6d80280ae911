"""sdg: taxonomy + teacher -> the SDG tarball prepare reads, in the run's output prefix.

Only with `sdgData.generate`. In order:

1. Preflight the teacher (`GET /v1/models` with key and CA): fails in seconds.
2. If this step's tarball is already in S3 (an earlier attempt uploaded it and died before
   its marker), resume from it: download, verify against its sha256, done. Otherwise start
   clean (the staging folder of an earlier attempt is discarded): never a mix of two attempts.
3. Clone the taxonomy at the spec's commit with its base branch; the qna.yaml files changed
   against the base branch are what `ilab data generate` generates from.
4. Generate with the library (`generation.py`, the one call that needs the teacher).
5. Pack `data/`, `model/` (empty: prepare puts the base model there) and `taxonomy/` (with
   `.git`, which the final evaluation diffs against the base branch) into a tar with fixed
   metadata, and upload it write-once to `<destinationPrefix>/sdg/<stepName>.tar`, the key
   the compiler gives prepare (`manifests/steps.py: sdg_object_key`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ilab_gitops.steps import base_model
from ilab_gitops.steps import teacher as teachers
from ilab_gitops.steps.archive import extract_stream
from ilab_gitops.steps.digests import tree_sha256
from ilab_gitops.steps.markers import done_marker, staged_output, write_marker
from ilab_gitops.steps.preflight import PreflightParams, preflight
from ilab_gitops.steps.prepare import BaseModelParams
from ilab_gitops.steps.runtime import StepError, StepParams, optional_env, run_step
from ilab_gitops.steps.s3 import ResumableObjectReader, S3Client, make_client, settings_from_env
from ilab_gitops.steps.uploads import Uploader

log = logging.getLogger(__name__)

REQUIRED_DIRS = ("data", "model", "taxonomy")
CHUNK = 1024 * 1024
GIT_TIMEOUT_S = 900


class TaxonomyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repoUrl: str
    commit: str
    baseBranch: str


class SdgParams(StepParams):
    taxonomy: TaxonomyParams
    baseModel: BaseModelParams
    pipeline: Literal["simple", "full"]
    numInstructions: int
    batchSize: int
    numWorkers: int
    destinationPrefix: str
    caBundle: str | None = None
    teacherCaBundle: str | None = None
    #: Seconds per teacher request (the library retries a failed one a few times).
    requestTimeoutSeconds: float = 600.0
    #: What the later steps need (judge, buckets, Hugging Face, Secret keys), checked first.
    preflight: PreflightParams


def object_key(prefix: str, step_name: str) -> str:
    """The tarball's key; the same as `manifests.steps.sdg_object_key`."""
    return f"{prefix.rstrip('/')}/sdg/{step_name}.tar"


# --- the taxonomy -------------------------------------------------------------------------


def _git(args: Sequence[str], cwd: Path | None, env: dict[str, str]) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StepError(f"git {args[0]} took longer than {GIT_TIMEOUT_S}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise StepError(f"git {args[0]} failed: {last}")
    return done.stdout


def git_env(token: str | None) -> dict[str, str]:
    """git's environment: no prompts, no user config; a token only as an HTTP header, via
    GIT_CONFIG_* (never on the command line, never written to .git/config)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO"):
        if name in os.environ:
            env[name] = os.environ[name]
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return env


def clone_taxonomy(taxonomy: TaxonomyParams, dest: Path, token: str | None) -> list[str]:
    """Clone at the commit with `origin/<base>`; the changed qna.yaml paths, sorted."""
    env = git_env(token)
    _git(["clone", "--quiet", "--no-checkout", "--", taxonomy.repoUrl, str(dest)], None, env)
    try:
        _git(["checkout", "--quiet", "--detach", taxonomy.commit], dest, env)
    except StepError:
        raise StepError(
            f"taxonomy {taxonomy.repoUrl} has no commit {taxonomy.commit} "
            "(is it pushed to a branch the clone fetches?)"
        ) from None
    base = f"origin/{taxonomy.baseBranch}"
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], dest, env)
    except StepError:
        raise StepError(
            f"taxonomy {taxonomy.repoUrl} has no branch {taxonomy.baseBranch!r}"
        ) from None
    out = _git(["diff", "--name-only", "-z", f"{base}...HEAD"], dest, env)
    changed = sorted(p for p in out.split("\0") if p.endswith("qna.yaml"))
    if not changed:
        raise StepError(
            f"taxonomy commit {taxonomy.commit} changes no qna.yaml against "
            f"{taxonomy.baseBranch!r}: nothing to generate from"
        )
    return changed


# --- the tarball --------------------------------------------------------------------------


def _members(root: Path) -> Iterator[Path]:
    for name in REQUIRED_DIRS:
        top = root / name
        yield top
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            here = Path(dirpath)
            for entry in sorted(dirnames + filenames):
                yield here / entry


def pack(root: Path, tar_path: Path) -> str:
    """Tar `data/`, `model/`, `taxonomy/` of `root` with fixed metadata; its sha256.

    Symlinks are refused (the taxonomy is data; prepare's extractor would check them anyway).
    """

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
        return info

    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in _members(root):
            if path.is_symlink():
                raise StepError(f"refusing to pack symlink {path.relative_to(root)}")
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=clean)
    digest = hashlib.sha256()
    with tar_path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resume_from(client: S3Client, bucket: str, key: str, sha256: str, dest: Path) -> int:
    """Extract the tarball an earlier attempt uploaded; it must match its sha256."""
    reader = ResumableObjectReader(client, bucket, key)
    with io.BufferedReader(reader, CHUNK) as stream:
        extracted = extract_stream(stream, dest)
        while stream.read(CHUNK):
            pass
    got = reader.sha256.hexdigest()
    if got != sha256:
        raise StepError(f"{reader.uri}: sha256 is {got}, its metadata says {sha256}")
    missing = [n for n in REQUIRED_DIRS if not (dest / n).is_dir()]
    if missing:
        raise StepError(f"{reader.uri}: no {', '.join(missing)} in the tarball")
    return extracted.members


# --- the step -----------------------------------------------------------------------------


def tokenizer_model(params: SdgParams, work: Path) -> Path:
    """A local base model folder for the library's document chunking (knowledge only)."""
    source = params.baseModel
    if source.source == "pvc" and source.path is not None:
        return Path(source.path)
    dest = work / "base-model"
    dest.mkdir(parents=True)
    if source.source == "s3" and source.prefix is not None:
        settings = settings_from_env("MODEL", "the baseModel.s3 Secret", params.caBundle)
        base_model.fetch_s3_prefix(make_client(settings), settings.bucket, source.prefix, dest)
    elif source.source == "huggingFace" and source.repo and source.revision:
        with base_model.hub_online():
            token = optional_env("HF_TOKEN")
            base_model.fetch_huggingface(source.repo, source.revision, token, dest)
    else:
        raise StepError(f"baseModel {source.source} is missing its location")
    return dest


def sdg(params: SdgParams) -> None:
    from ilab_gitops.steps import generation

    with base_model.hub_online():  # the image is offline for docling, not for this check
        preflight(params.preflight)  # the run's first step: fail in seconds, not after SDG
    teacher = teachers.teacher_from_env()
    models = teachers.preflight(teacher, params.teacherCaBundle)
    log.info("teacher %s serves %s", teacher.endpoint, teacher.model)
    settings = settings_from_env("OUTPUT", "the output Secret", params.caBundle)
    client = make_client(settings)
    key = object_key(params.destinationPrefix, params.stepName)
    uri = f"s3://{settings.bucket}/{key}"
    uploader = Uploader(client, settings.bucket)
    with staged_output(params.output) as stage:
        content = stage / "content"
        content.mkdir()
        existing = uploader.existing_sha256(key)
        details: dict[str, object] = {"uri": uri, "teacher": teacher.model}
        if existing:
            log.info("%s exists (an earlier attempt uploaded it): resuming from it", uri)
            resume_from(client, settings.bucket, key, existing, content)
            details |= {"sha256": existing, "resumed": True}
        else:
            changed = clone_taxonomy(
                params.taxonomy, content / "taxonomy", optional_env("ILAB_TAXONOMY_TOKEN")
            )
            log.info("generating from %d qna.yaml: %s", len(changed), ", ".join(changed))
            (content / "model").mkdir()
            knowledge = any(p.startswith("knowledge/") for p in changed)
            generated = generation.generate(
                generation.Request(
                    teacher=teacher,
                    ca_bundle=params.teacherCaBundle,
                    taxonomy=content / "taxonomy",
                    base_branch=params.taxonomy.baseBranch,
                    output=content / "data",
                    work=stage / "work",
                    pipeline=params.pipeline,
                    num_instructions=params.numInstructions,
                    batch_size=params.batchSize,
                    num_workers=params.numWorkers,
                    timeout_s=params.requestTimeoutSeconds,
                    tokenizer_model=tokenizer_model(params, stage / "work") if knowledge else None,
                )
            )
            shutil.rmtree(stage / "work", ignore_errors=True)
            tar_path = stage / "sdg.tar"
            sha256 = pack(content, tar_path)
            # An existing object with another digest is refused by the uploader (write-once).
            uploader.put_file(tar_path, key, sha256)
            tar_path.unlink()
            details |= {"sha256": sha256, "resumed": False, "qna": changed, "data": generated}
        details["teacherModels"] = len(models)
        files = {f"content/data/{k}": v for k, v in tree_sha256(content / "data").items()}
        write_marker(stage, done_marker(params, files=files, details=details))


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, SdgParams, sdg, description=__doc__ or "sdg")


if __name__ == "__main__":
    raise SystemExit(main())
