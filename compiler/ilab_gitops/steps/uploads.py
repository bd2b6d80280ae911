"""Write-once uploads to S3: sha256 in metadata, no overwriting, bounded memory.

An object that already exists with the same sha256 (a re-run after a partial upload) is
kept; one with another digest, or without ours, is a different artifact and the step
refuses. The create itself is conditional (`If-None-Match: *`) so two writers racing for
the same key cannot both win.

A server that does not enforce that condition would overwrite silently, and some answer
200 while ignoring the header. So before its first write (and again before its first
multipart upload) the uploader probes: it creates a throw-away object next to the target
twice, conditionally; the second create must be refused. A server that accepts it, or that
rejects conditional writes outright, is refused with a message naming the endpoint: there
is no safe way to write once on it (a lock object needs the same primitive).

Large files go up as a multipart upload read one part at a time: memory is one part.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from botocore.exceptions import ClientError

from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.s3 import S3Client, error_code

log = logging.getLogger(__name__)

MiB = 1024 * 1024
SHA_META = "sha256"
_NOT_SUPPORTED = {"NotImplemented", "501", "InvalidArgument"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
PROBE_NAME = ".ilab-gitops-write-probe-"


class ConditionalWritesUnsupported(StepError):
    """The server does not enforce `If-None-Match: *`: writing there could overwrite."""


@dataclass
class Uploader:
    client: S3Client
    bucket: str
    part_size: int = 64 * MiB
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    probed: set[str] = field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return str(getattr(self.client.meta, "endpoint_url", "") or "the S3 endpoint")

    def _unsupported(self, how: str) -> ConditionalWritesUnsupported:
        return ConditionalWritesUnsupported(
            f"{self.endpoint} (bucket {self.bucket}) {how}: refusing to upload, because "
            "objects there could be overwritten silently; use a server that enforces "
            "conditional writes (If-None-Match: *)"
        )

    def probe(self, near: str, kind: str) -> None:
        """Check once per kind ("put", "multipart") that a second conditional create fails.

        The probe object is created next to `near` (same prefix, so the same permissions
        apply) under a random name, and deleted afterwards when the server allows it.
        """
        if kind in self.probed:
            return
        folder = near.rsplit("/", 1)[0] + "/" if "/" in near else ""
        key = f"{folder}{PROBE_NAME}{uuid.uuid4().hex}"
        try:
            for attempt in (1, 2):
                try:
                    if kind == "put":
                        self.client.put_object(
                            Bucket=self.bucket, Key=key, Body=b"%d" % attempt, IfNoneMatch="*"
                        )
                    else:
                        self._multipart_body(key, [b"%d" % attempt], {})
                except ClientError as exc:
                    code = error_code(exc)
                    if attempt == 2 and code in _CONFLICT:
                        break
                    if code in _NOT_SUPPORTED:
                        raise self._unsupported(
                            f"rejects conditional writes ({kind}, {code})"
                        ) from None
                    raise
                if attempt == 2:
                    raise self._unsupported(
                        f"ignores If-None-Match: * ({kind}: a second create of "
                        f"s3://{self.bucket}/{key} succeeded)"
                    )
        finally:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                log.warning("could not delete the probe object %s (%s)", key, error_code(exc))
        log.info("%s enforces conditional writes (%s)", self.endpoint, kind)
        self.probed.add(kind)

    def existing_sha256(self, key: str) -> str | None:
        """The sha256 metadata of an existing object, "" if it has none, None if absent."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return str(head.get("Metadata", {}).get(SHA_META, ""))

    def _needs_upload(self, key: str, sha256: str) -> bool:
        """False when the same content is already there; refuses to replace other content."""
        existing = self.existing_sha256(key)
        if existing == sha256:
            self.skipped.append(key)
            return False
        if existing is not None:
            raise StepError(
                f"refusing to overwrite s3://{self.bucket}/{key}: it holds a different "
                f"artifact (sha256 {existing or 'unknown'}, ours {sha256})"
            )
        return True

    def put_file(self, path: Path, key: str, sha256: str) -> bool:
        """Upload unless the same content is there; returns True when it uploaded."""
        if not self._needs_upload(key, sha256):
            return False
        size = path.stat().st_size
        if size > self.part_size:
            self._multipart(path, key, sha256)
        else:
            self._put(key, path.read_bytes(), sha256)
        self.uploaded.append(key)
        return True

    def put_bytes(self, key: str, body: bytes, sha256: str) -> bool:
        """Like put_file, for content already in memory."""
        if not self._needs_upload(key, sha256):
            return False
        self._put(key, body, sha256)
        self.uploaded.append(key)
        return True

    def _put(self, key: str, body: bytes, sha256: str) -> None:
        self.probe(key, "put")
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                Metadata={SHA_META: sha256},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            self._raise_conflict(exc, key)

    def _raise_conflict(self, exc: ClientError, key: str) -> NoReturn:
        if error_code(exc) in _CONFLICT:
            raise StepError(
                f"s3://{self.bucket}/{key} was created by someone else meanwhile"
            ) from None
        raise exc

    def _multipart(self, path: Path, key: str, sha256: str) -> None:
        self.probe(key, "multipart")

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(self.part_size):
                    yield chunk

        try:
            count = self._multipart_body(key, chunks(), {SHA_META: sha256})
        except ClientError as exc:
            self._raise_conflict(exc, key)
        log.info("uploaded %s in %d parts", key, count)

    def _multipart_body(self, key: str, chunks: Iterable[bytes], metadata: dict[str, str]) -> int:
        """One conditional multipart upload of `chunks` (memory: one part), aborted on error."""
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=metadata)
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, chunk in enumerate(chunks, start=1):
                response = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError:
                log.warning("could not abort multipart upload %s of %s", upload_id, key)
            raise
        return len(parts)
