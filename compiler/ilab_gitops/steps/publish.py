"""publish: the candidate to Hugging Face (repo + revision, with a model card) and
results.json next to the model in S3.

What goes to Hugging Face is checked first against upload's S3 manifest, so the published
weights are byte for byte the archived ones. The Hub commit is one `create_commit` (model
files + README.md); the repo and the branch are created when missing. results.json is
written once: a re-run finding an equal one (ignoring `finishedAt`) keeps it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from ilab_gitops.results import ModelLocation, RunResults, TaxonomyInfo
from ilab_gitops.steps import model_card
from ilab_gitops.steps.digests import file_sha256, tree_files, tree_sha256
from ilab_gitops.steps.markers import done_marker, now_rfc3339, staged_output, write_marker
from ilab_gitops.steps.outputs import MANIFEST_FILE, UPLOAD_FILE, Manifest, UploadOutput
from ilab_gitops.steps.runtime import StepError, StepParams, run_step, secret_env
from ilab_gitops.steps.s3 import S3Client, error_code, make_client, settings_from_env
from ilab_gitops.steps.uploads import Uploader

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
REPORT_DIR = "report"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HuggingFaceTarget(_Params):
    repo: str
    revision: str
    private: bool


class TaxonomyRef(_Params):
    repoUrl: str
    commit: str
    pullRequests: list[int]


class PublishParams(StepParams):
    uploadPath: str
    huggingFace: HuggingFaceTarget | None
    github: dict[str, Any]
    taxonomy: TaxonomyRef
    baseModel: dict[str, Any]
    caBundle: str | None = None
    specSha256: str
    cluster: str
    namespace: str
    changelog: str | None = None


def base_model_id(base: dict[str, Any]) -> str:
    if "huggingFace" in base:
        hf = base["huggingFace"]
        return f"{hf['repo']}@{hf['revision']}"
    if "s3" in base:
        return f"s3:{base['s3']['prefix']}"
    if "pvc" in base:
        return f"pvc:{base['pvc']['claimName']}/{base['pvc'].get('path', '')}".rstrip("/")
    raise StepError(f"baseModel has none of s3, huggingFace, pvc: {sorted(base)}")


def read_upload(folder: Path) -> tuple[UploadOutput, Manifest]:
    try:
        upload = UploadOutput.model_validate_json((folder / UPLOAD_FILE).read_bytes())
        manifest = Manifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
    except FileNotFoundError as exc:
        raise StepError(f"{exc.filename} not found: did the upload step finish?") from None
    except ValidationError as exc:
        raise StepError(
            f"{folder}: unexpected upload output ({exc.error_count()} errors)"
        ) from None
    return upload, manifest


def verify_against_manifest(candidate: Path, manifest: Manifest) -> list[str]:
    """Model files, checked against what upload archived; returns their relative paths."""
    files = tree_files(candidate)
    archived = {
        k.removeprefix("model/"): v for k, v in manifest.files.items() if k.startswith("model/")
    }
    if sorted(archived) != files:
        raise StepError(f"{candidate} no longer matches the uploaded model (file list differs)")
    for rel in files:
        if file_sha256(candidate / rel) != archived[rel].sha256:
            raise StepError(f"{candidate / rel} changed since it was uploaded (sha256 differs)")
    return files


def build_results(params: PublishParams, upload: UploadOutput, hf_url: str | None) -> RunResults:
    final = upload.finalEval
    hf = params.huggingFace
    return RunResults(
        run=params.run,
        specSha256=params.specSha256,
        cluster=params.cluster,
        namespace=params.namespace,
        baseModel=base_model_id(params.baseModel),
        candidateCheckpoint=upload.mtBench.result.bestCheckpoint,
        taxonomy=TaxonomyInfo(
            repoUrl=params.taxonomy.repoUrl,
            commit=params.taxonomy.commit,
            baseBranch=final.taxonomyBaseBranch,
            pullRequests=sorted(params.taxonomy.pullRequests),
        ),
        mtBench=upload.mtBench.result,
        mtBenchBranch=final.mtBenchBranch,
        mmluBranch=final.mmluBranch,
        qnaFiles=sorted(final.qnaFiles, key=lambda q: q.path),
        model=ModelLocation(
            s3Uri=upload.s3Uri + "model/",
            huggingFaceRepo=hf.repo if hf else None,
            huggingFaceRevision=hf.revision if hf else None,
            huggingFaceUrl=hf_url,
        ),
        finishedAt=now_rfc3339(),
    )


def push_to_hub(
    target: HuggingFaceTarget, candidate: Path, files: list[str], card: str, run: str
) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = secret_env("HF_TOKEN", "add the token key to publish.huggingFace.tokenSecretRef")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        repo_url = api.create_repo(target.repo, private=target.private, exist_ok=True)
        if target.revision != "main":
            api.create_branch(target.repo, branch=target.revision, exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(candidate / rel))
            for rel in files
            if rel != "README.md"
        ]
        operations.append(
            CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode())
        )
        commit = api.create_commit(
            target.repo,
            operations=operations,
            revision=target.revision,
            commit_message=f"ilab-gitops: publish run {run}",
        )
    except HfHubHTTPError as exc:
        raise StepError(
            f"Hugging Face publish to {target.repo}@{target.revision} failed: {exc}"
        ) from None
    log.info("published %s@%s: %s", target.repo, target.revision, commit.commit_url)
    return f"{str(repo_url).rstrip('/')}/tree/{target.revision}"


def put_results(client: S3Client, bucket: str, key: str, results: RunResults) -> RunResults:
    """Write results.json once; an equal one already there (but for finishedAt) is kept."""
    existing: RunResults | None = None
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        existing = RunResults.model_validate_json(body)
    except ClientError as exc:
        if error_code(exc) not in {"404", "NoSuchKey"}:
            raise
    except ValidationError:
        raise StepError(f"s3://{bucket}/{key} exists and is not a results.json") from None
    if existing is not None:
        if existing.model_dump(exclude={"finishedAt"}) == results.model_dump(
            exclude={"finishedAt"}
        ):
            return existing
        raise StepError(f"refusing to overwrite s3://{bucket}/{key}: it holds other results")
    data = (results.model_dump_json(indent=2) + "\n").encode()
    Uploader(client, bucket).put_bytes(key, data, hashlib.sha256(data).hexdigest())
    return results


def upload_report(
    client: S3Client,
    bucket: str,
    *,
    upload: UploadOutput,
    results: RunResults,
    params: PublishParams,
    stage: Path,
) -> list[str]:
    """The run's HTML report and plots, made from the workspace, into `<prefix>/report/`
    (write-once: a re-run makes the same bytes, so it finds them already there)."""
    from ilab_gitops.report.collect import report_from_workspace

    results_json = (results.model_dump_json(indent=2) + "\n").encode()
    files = report_from_workspace(
        Path(params.uploadPath).parent,
        params.run,
        results_json,
        stage / REPORT_DIR,
        Path(upload.candidatePath),
    )
    uploader = Uploader(client, bucket)
    keys = []
    for rel in files:
        path = stage / REPORT_DIR / rel
        key = f"{upload.prefix}/{REPORT_DIR}/{rel}"
        uploader.put_file(path, key, file_sha256(path))
        keys.append(f"s3://{bucket}/{key}")
    return keys


def publish(params: PublishParams) -> None:
    upload, manifest = read_upload(Path(params.uploadPath))
    candidate = Path(upload.candidatePath)
    files = verify_against_manifest(candidate, manifest)
    settings = settings_from_env("OUTPUT", "the output Secret", params.caBundle)
    hf = params.huggingFace
    hf_url = None
    if hf is not None:
        hf_url = (
            f"{(os.environ.get('HF_ENDPOINT') or 'https://huggingface.co').rstrip('/')}/"
            f"{hf.repo}/tree/{hf.revision}"
        )
    results = build_results(params, upload, hf_url)
    card = model_card.render(results, params.changelog)
    if hf is not None:
        push_to_hub(hf, candidate, files, card, params.run)
    client = make_client(settings)
    results = put_results(client, settings.bucket, f"{upload.prefix}/{RESULTS_FILE}", results)
    with staged_output(params.output) as stage:
        (stage / RESULTS_FILE).write_text(results.model_dump_json(indent=2) + "\n", "utf-8")
        (stage / "README.md").write_text(card, "utf-8")
        report_keys = upload_report(
            client, settings.bucket, upload=upload, results=results, params=params, stage=stage
        )
        write_marker(
            stage,
            done_marker(
                params,
                files=tree_sha256(stage),
                details={
                    "s3Results": f"s3://{settings.bucket}/{upload.prefix}/{RESULTS_FILE}",
                    "huggingFace": hf_url,
                    "report": report_keys,
                },
            ),
        )
    log.info("results: %s", json.dumps(results.mtBenchBranch.model_dump()))


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, PublishParams, publish, description=__doc__ or "publish")


if __name__ == "__main__":
    raise SystemExit(main())
