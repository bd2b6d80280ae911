"""prepare: SDG tarball + base model -> `<outputPath>/{data,model,taxonomy,processed}`.

0. Preflight (preflight.py): every Secret key, bucket, the judge and the Hugging Face
   revision that later steps need, checked before any download; all problems at once.
1. Stream the SDG tarball from S3 through sha256 and a safe tar extractor in one pass (no
   local copy of the tarball); a dropped connection resumes with a Range request.
2. Commit nothing unless the digest matches and the layout is data/, model/, taxonomy/.
3. Put the base model into model/ (S3 prefix, Hugging Face snapshot or PVC copy).
4. Tokenize both phases with instructlab-training's data processing (CPU only).
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ilab_gitops.steps import base_model, data, gitsafe
from ilab_gitops.steps.archive import Extracted, Limits, extract_stream
from ilab_gitops.steps.digests import tree_sha256
from ilab_gitops.steps.markers import done_marker, staged_output, write_marker
from ilab_gitops.steps.preflight import PreflightParams, check_taxonomy, preflight
from ilab_gitops.steps.runtime import StepError, StepParams, optional_env, run_step, secret_env
from ilab_gitops.steps.s3 import ResumableObjectReader, S3Client, make_client, settings_from_env
from ilab_gitops.steps.taxonomy import head_commit

log = logging.getLogger(__name__)

REQUIRED_DIRS = ("data", "model", "taxonomy")
READ_BUFFER = 1024 * 1024


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SdgDataParams(_Params):
    sha256: str | None = None
    caBundle: str | None = None


class BaseModelParams(_Params):
    source: Literal["s3", "huggingFace", "pvc"]
    prefix: str | None = None
    repo: str | None = None
    revision: str | None = None
    path: str | None = None


class TaxonomyParams(_Params):
    repoUrl: str
    commit: str


class PrepareParams(StepParams):
    sdgData: SdgDataParams
    baseModel: BaseModelParams
    taxonomy: TaxonomyParams
    maxSeqLen: int
    preflight: PreflightParams


@dataclass(frozen=True)
class Fetched:
    uri: str
    sha256: str
    size: int
    resumes: int
    extracted: Extracted


def check_layout(root: Path) -> None:
    missing = [
        name for name in REQUIRED_DIRS if not (root / name).is_dir() or (root / name).is_symlink()
    ]
    if not missing:
        return
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    hint = ""
    if len(found) == 1 and found[0].endswith("/"):
        hint = f" (everything is inside {found[0]}: pack the tarball from inside that folder)"
    raise StepError(
        f"SDG tarball must have top-level {', '.join(d + '/' for d in REQUIRED_DIRS)}; "
        f"missing {', '.join(missing)}; found {found or 'nothing'}{hint}"
    )


def fetch_sdg(
    client: S3Client,
    bucket: str,
    key: str,
    dest: Path,
    expected_sha256: str | None,
    *,
    limits: Limits | None = None,
) -> Fetched:
    """Download + verify + extract in one streaming pass into the empty folder `dest`.

    Members are extracted into `dest/.sdg-extract` while the bytes are hashed; only when the
    digest matches the pin and the layout is right are they moved into `dest` (and the
    taxonomy's `.git` stripped of what could execute). `dest` itself is the step's staging
    folder, thrown away on any error, so nothing of a wrong tarball is ever kept.
    """
    extract_dir = dest / ".sdg-extract"
    extract_dir.mkdir()
    reader = ResumableObjectReader(client, bucket, key)
    with io.BufferedReader(reader, READ_BUFFER) as stream:
        extracted = extract_stream(stream, extract_dir, limits)
        while stream.read(READ_BUFFER):  # tar padding / compression trailer: hash it all
            pass
    digest = reader.sha256.hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise StepError(
            f"sha256 mismatch for {reader.uri}: expected {expected_sha256}, got {digest}; "
            "nothing was kept"
        )
    check_layout(extract_dir)
    if (extract_dir / extract_dir.name).exists():
        raise StepError(f"SDG tarball has a top-level {extract_dir.name}, a name prepare uses")
    if gitsafe.sanitize_checkout(extract_dir / "taxonomy"):
        # Rewritten or removed: their digests are taken again from disk for the marker.
        for rel in [r for r in extracted.files if r.startswith("taxonomy/.git/")]:
            del extracted.files[rel]
    for child in sorted(extract_dir.iterdir()):
        child.rename(dest / child.name)
    extract_dir.rmdir()
    log.info(
        "%s: %d bytes, sha256 %s, %d members (%d resumes)",
        reader.uri,
        reader.size,
        digest,
        extracted.members,
        reader.resumes,
    )
    return Fetched(reader.uri, digest, reader.size, reader.resumes, extracted)


def bring_base_model(params: PrepareParams, model_dir: Path) -> dict[str, object]:
    source = params.baseModel
    stale = sum(1 for p in model_dir.rglob("*") if not p.is_dir())
    if stale:
        log.warning("replacing the tarball's model/ (%d files) with the base model", stale)
    shutil.rmtree(model_dir)
    model_dir.mkdir()
    info: dict[str, object] = {"source": source.source, "replacedSdgModelFiles": stale}
    if source.source == "s3":
        if source.prefix is None:
            raise StepError("baseModel.prefix is required for an s3 base model")
        settings = settings_from_env("MODEL", "the baseModel.s3 Secret", params.sdgData.caBundle)
        client = make_client(settings)
        base_model.fetch_s3_prefix(client, settings.bucket, source.prefix, model_dir)
        info["uri"] = f"s3://{settings.bucket}/{source.prefix.strip('/')}/"
    elif source.source == "huggingFace":
        if source.repo is None or source.revision is None:
            raise StepError("baseModel.repo and baseModel.revision are required for huggingFace")
        base_model.fetch_huggingface(
            source.repo, source.revision, optional_env("HF_TOKEN"), model_dir
        )
        info["uri"] = f"hf://{source.repo}@{source.revision}"
    else:
        if source.path is None:
            raise StepError("baseModel.path is required for a pvc base model")
        base_model.copy_pvc(Path(source.path), model_dir)
        info["uri"] = f"pvc:{source.path}"
    base_model.check_model_dir(model_dir)
    return info


def prepare(params: PrepareParams, *, limits: Limits | None = None) -> None:
    preflight(params.preflight)
    settings = settings_from_env("SDG", "the sdgData Secret", params.sdgData.caBundle)
    key = secret_env("ILAB_SDG_DATA_KEY", "add key 'data_key' to the sdgData Secret")
    client = make_client(settings)
    with staged_output(params.output) as stage:
        fetched = fetch_sdg(
            client, settings.bucket, key, stage, params.sdgData.sha256, limits=limits
        )
        model_info = bring_base_model(params, stage / "model")
        commit = head_commit(stage / "taxonomy")
        base_branch = params.preflight.taxonomyBaseBranch
        if base_branch is not None:
            problems = check_taxonomy(stage / "taxonomy", params.taxonomy.commit, base_branch)
            if problems:
                raise StepError("; ".join(problems))
        elif commit is not None and commit != params.taxonomy.commit:
            log.warning("taxonomy/ is at %s, the run names %s", commit, params.taxonomy.commit)
        data.phase_inputs(stage / "data")
        samples = {
            phase: data.process_phase(
                stage / "data",
                phase,
                stage / "processed" / phase,
                model=stage / "model",
                max_seq_len=params.maxSeqLen,
                procs=data.default_procs(),
            )
            for phase in data.PHASES
        }
        known = {k: v for k, v in fetched.extracted.files.items() if not k.startswith("model/")}
        marker = done_marker(
            params,
            files=tree_sha256(stage, known),
            details={
                "sdgData": {
                    "uri": fetched.uri,
                    "sha256": fetched.sha256,
                    "bytes": fetched.size,
                    "resumes": fetched.resumes,
                },
                "baseModel": model_info,
                "taxonomy": {"commit": params.taxonomy.commit, "head": commit},
                "samples": samples,
            },
        )
        write_marker(stage, marker)


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, PrepareParams, prepare, description=__doc__ or "prepare")


if __name__ == "__main__":
    raise SystemExit(main())
