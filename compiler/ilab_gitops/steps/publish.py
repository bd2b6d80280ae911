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
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from ilab_gitops.results.model import ModelLocation, RunResults, TaxonomyInfo
from ilab_gitops.steps import model_card
from ilab_gitops.steps.digests import file_sha256, tree_files, tree_sha256
from ilab_gitops.steps.markers import done_marker, now_rfc3339, staged_output, write_marker
from ilab_gitops.steps.outputs import MANIFEST_FILE, UPLOAD_FILE, Manifest, UploadOutput
from ilab_gitops.steps.runtime import StepError, StepParams, run_step, secret_env
from ilab_gitops.steps.s3 import S3Client, error_code, make_client, settings_from_env
from ilab_gitops.steps.uploads import Uploader

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
#: Files the Hub itself puts into a new repo; not part of what a run publishes.
HUB_HOUSEKEEPING = frozenset({".gitattributes"})
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


def git_blob_oid(data: bytes) -> str:
    """The id git (and the Hub's tree listing) gives a non-LFS file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _same_file(remote: Any, local: Path | bytes) -> bool:
    """Compare a Hub tree entry with local content: sha256 for LFS files, else the blob id."""
    size = len(local) if isinstance(local, bytes) else local.stat().st_size
    if remote.size != size:
        return False
    if remote.lfs is not None:
        ours = hashlib.sha256(local).hexdigest() if isinstance(local, bytes) else file_sha256(local)
        return bool(remote.lfs.sha256 == ours)
    data = local if isinstance(local, bytes) else local.read_bytes()
    return bool(remote.blob_id == git_blob_oid(data))


def differing_files(remote: dict[str, Any], local: dict[str, Path | bytes]) -> list[str]:
    """Paths whose content differs between a Hub revision and what we would publish."""
    paths = sorted((set(remote) - HUB_HOUSEKEEPING) | set(local))
    return [
        path
        for path in paths
        if path not in remote or path not in local or not _same_file(remote[path], local[path])
    ]


def _tree(api: Any, repo: str, revision: str) -> dict[str, Any] | None:
    """Files at `revision` (path -> RepoFile), or None when the revision does not exist."""
    from huggingface_hub.errors import RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    try:
        entries = list(api.list_repo_tree(repo, revision=revision, recursive=True))
    except RevisionNotFoundError:
        return None
    return {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}


def push_to_hub(
    target: HuggingFaceTarget, candidate: Path, files: list[str], card: str, run: str
) -> str:
    """Publish to a new repo or revision; an existing one must already hold exactly this.

    Never overwrites: an existing revision with other content is refused, and so is a
    public repo when `private: true` asks for a private one. A new branch starts from
    `main`, so files of `main` that are not part of this model are deleted in it.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    token = secret_env("HF_TOKEN", "add the token key to publish.huggingFace.tokenSecretRef")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    where = f"{target.repo}@{target.revision}"
    local: dict[str, Path | bytes] = {rel: candidate / rel for rel in files if rel != "README.md"}
    local["README.md"] = card.encode()
    try:
        try:
            info = api.model_info(target.repo)
        except RepositoryNotFoundError:
            info = None
        if info is None:
            repo_url = str(api.create_repo(target.repo, private=target.private))
        else:
            if target.private and not info.private:
                raise StepError(
                    f"publish.huggingFace.private is true, but {target.repo} exists and is "
                    "public: refusing to publish there (make it private on the Hub or choose "
                    "another repo)"
                )
            repo_url = f"{api.endpoint.rstrip('/')}/{target.repo}"
        remote = _tree(api, target.repo, target.revision)
        deletes: list[str] = []
        if remote is None:
            api.create_branch(target.repo, branch=target.revision)
            inherited = _tree(api, target.repo, target.revision) or {}
            deletes = sorted(set(inherited) - set(local) - HUB_HOUSEKEEPING)
        else:
            differing = differing_files(remote, local)
            if not differing:
                log.info("%s already holds exactly this model and card: nothing to commit", where)
                return f"{repo_url.rstrip('/')}/tree/{target.revision}"
            foreign = sorted(set(remote) - HUB_HOUSEKEEPING)
            if foreign:
                shown = ", ".join(differing[:3]) + (", ..." if len(differing) > 3 else "")
                raise StepError(
                    f"refusing to overwrite Hugging Face {where}: it holds other content "
                    f"({len(differing)} files differ: {shown}); publish to a new revision"
                )
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(
                path_in_repo=rel,
                path_or_fileobj=content if isinstance(content, bytes) else str(content),
            )
            for rel, content in sorted(local.items())
        ]
        operations.extend(CommitOperationDelete(path_in_repo=rel) for rel in deletes)
        commit = api.create_commit(
            target.repo,
            operations=operations,
            revision=target.revision,
            commit_message=f"ilab-gitops: publish run {run}",
        )
    except HfHubHTTPError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise StepError(f"Hugging Face publish to {where} failed: {detail}") from None
    log.info("published %s: %s", where, commit.commit_url)
    return f"{repo_url.rstrip('/')}/tree/{target.revision}"


def existing_results(
    client: S3Client, bucket: str, key: str, results: RunResults
) -> RunResults | None:
    """An equal results.json already there (but for finishedAt), None when there is none.

    One with other results is an error: results.json is written once.
    """
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        existing = RunResults.model_validate_json(body)
    except ClientError as exc:
        if error_code(exc) not in {"404", "NoSuchKey"}:
            raise
        return None
    except ValidationError:
        raise StepError(f"s3://{bucket}/{key} exists and is not a results.json") from None
    if existing.model_dump(exclude={"finishedAt"}) != results.model_dump(exclude={"finishedAt"}):
        raise StepError(f"refusing to overwrite s3://{bucket}/{key}: it holds other results")
    return existing


def put_results(client: S3Client, bucket: str, key: str, results: RunResults) -> RunResults:
    """Write results.json once; an equal one already there (but for finishedAt) is kept."""
    existing = existing_results(client, bucket, key, results)
    if existing is not None:
        return existing
    data = (results.model_dump_json(indent=2) + "\n").encode()
    Uploader(client, bucket).put_bytes(key, data, hashlib.sha256(data).hexdigest())
    return results


_CARD_FINISHED = re.compile(r", finished (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\.$", re.MULTILINE)


def card_time_on_hub(
    target: HuggingFaceTarget, results: RunResults, changelog: str | None
) -> RunResults:
    """`results` with the finishedAt of the card this run already published, if it did.

    A re-run whose results.json was never written (it failed after the Hub commit) must
    render the same card as the first attempt, or the revision would look foreign.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    with tempfile.TemporaryDirectory(prefix="hub-card-") as tmp:
        try:
            path = hf_hub_download(
                target.repo,
                "README.md",
                revision=target.revision,
                token=secret_env("HF_TOKEN", "add the token key to publish.huggingFace"),
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                cache_dir=tmp,
            )
            text = Path(path).read_text("utf-8", errors="replace")
        except (HfHubHTTPError, EntryNotFoundError):
            return results  # no such repo, revision or card: nothing published yet
    match = _CARD_FINISHED.search(text)
    if match is None:
        return results
    earlier = results.model_copy(update={"finishedAt": match.group(1)})
    return earlier if model_card.render(earlier, changelog) == text else results


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
    client = make_client(settings)
    results_key = f"{upload.prefix}/{RESULTS_FILE}"
    # A re-run publishes the same card as the attempt before it (same finishedAt).
    earlier = existing_results(client, settings.bucket, results_key, results)
    if earlier is not None:
        results = earlier
    elif hf is not None:
        results = card_time_on_hub(hf, results, params.changelog)
    card = model_card.render(results, params.changelog)
    if hf is not None:
        push_to_hub(hf, candidate, files, card, params.run)
    with staged_output(params.output) as stage:
        # results.json is the commit point of `results sync`: the report goes up before it,
        # so a sync that finds results.json finds the report too.
        report_keys = upload_report(
            client, settings.bucket, upload=upload, results=results, params=params, stage=stage
        )
        results = put_results(client, settings.bucket, results_key, results)
        (stage / RESULTS_FILE).write_text(results.model_dump_json(indent=2) + "\n", "utf-8")
        (stage / "README.md").write_text(card, "utf-8")
        write_marker(
            stage,
            done_marker(
                params,
                files=tree_sha256(stage),
                details={
                    "s3Results": f"s3://{settings.bucket}/{results_key}",
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
