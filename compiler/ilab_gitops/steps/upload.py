"""upload: the candidate model and the evaluation outputs -> `<destinationPrefix>/` in S3.

Layout under the prefix: `model/` (the best phase-2 checkpoint), `eval/mt_bench/`,
`eval/final/`, and `manifest.json` (sha256 and size of every object), written last: a
manifest means the upload is complete. A re-run after a partial upload skips objects whose
sha256 metadata matches and fails on any that differ, so an artifact is never replaced.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from ilab_gitops.steps.digests import file_sha256, tree_files, tree_sha256
from ilab_gitops.steps.markers import done_marker, staged_output, write_marker
from ilab_gitops.steps.outputs import (
    FINAL_EVAL_FILE,
    MANIFEST_FILE,
    MT_BENCH_FILE,
    UPLOAD_FILE,
    FinalEvalOutput,
    Manifest,
    ManifestEntry,
    MtBenchOutput,
    UploadOutput,
)
from ilab_gitops.steps.runtime import StepError, StepParams, run_step
from ilab_gitops.steps.s3 import make_client, settings_from_env
from ilab_gitops.steps.uploads import MiB, Uploader

log = logging.getLogger(__name__)


class UploadParams(StepParams):
    mtBenchPath: str
    finalEvalPath: str
    destinationPrefix: str
    caBundle: str | None = None


T = TypeVar("T", MtBenchOutput, FinalEvalOutput)


def read_output(folder: str, name: str, model: type[T]) -> T:
    path = Path(folder) / name
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise StepError(f"{path} not found: did the evaluation step finish?") from None
    except ValidationError as exc:
        raise StepError(f"{path}: unexpected contents: {exc.error_count()} errors") from None


def plan_files(candidate: Path, mt_bench: Path, final: Path) -> dict[str, Path]:
    """Destination path below the prefix -> local file."""
    if not candidate.is_dir():
        raise StepError(f"candidate checkpoint {candidate} does not exist")
    plan: dict[str, Path] = {}
    for base, root in (("model", candidate), ("eval/mt_bench", mt_bench), ("eval/final", final)):
        for rel in tree_files(root):
            plan[f"{base}/{rel}"] = root / rel
    return plan


def manifest_bytes(manifest: Manifest) -> bytes:
    return (manifest.model_dump_json(indent=2) + "\n").encode()


def upload(params: UploadParams, *, part_size: int = 64 * MiB) -> None:
    settings = settings_from_env("OUTPUT", "the output Secret", params.caBundle)
    mt = read_output(params.mtBenchPath, MT_BENCH_FILE, MtBenchOutput)
    final = read_output(params.finalEvalPath, FINAL_EVAL_FILE, FinalEvalOutput)
    candidate = Path(mt.candidatePath)
    plan = plan_files(candidate, Path(params.mtBenchPath), Path(params.finalEvalPath))
    digests = {key: file_sha256(path) for key, path in plan.items()}
    manifest = Manifest(
        files={
            key: ManifestEntry(sha256=digests[key], size=plan[key].stat().st_size)
            for key in sorted(plan)
        }
    )
    body = manifest_bytes(manifest)
    prefix = params.destinationPrefix.strip("/")
    uploader = Uploader(make_client(settings), settings.bucket, part_size=part_size)
    manifest_sha = hashlib.sha256(body).hexdigest()
    existing = uploader.existing_sha256(f"{prefix}/{MANIFEST_FILE}")
    if existing is not None and existing != manifest_sha:
        raise StepError(
            f"refusing to overwrite s3://{settings.bucket}/{prefix}/: a different artifact "
            f"(manifest sha256 {existing or 'unknown'}) is already there"
        )
    for key in sorted(plan):
        uploader.put_file(plan[key], f"{prefix}/{key}", digests[key])
    uploader.put_bytes(f"{prefix}/{MANIFEST_FILE}", body, manifest_sha)
    log.info("uploaded %d objects, %d already there", len(uploader.uploaded), len(uploader.skipped))
    summary = UploadOutput(
        bucket=settings.bucket,
        prefix=prefix,
        s3Uri=f"s3://{settings.bucket}/{prefix}/",
        candidatePath=str(candidate),
        modelKeys=sorted(k for k in plan if k.startswith("model/")),
        mtBench=mt,
        finalEval=final,
    )
    with staged_output(params.output) as stage:
        (stage / MANIFEST_FILE).write_bytes(body)
        (stage / UPLOAD_FILE).write_text(summary.model_dump_json(indent=2) + "\n", "utf-8")
        write_marker(
            stage,
            done_marker(
                params,
                files=tree_sha256(stage),
                details={
                    "s3Uri": summary.s3Uri,
                    "objects": len(plan) + 1,
                    "uploaded": len(uploader.uploaded),
                    "alreadyThere": len(uploader.skipped),
                },
            ),
        )


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, UploadParams, upload, description=__doc__ or "upload")


if __name__ == "__main__":
    raise SystemExit(main())
