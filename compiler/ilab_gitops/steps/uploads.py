"""Write-once uploads to S3: sha256 in metadata, no overwriting, bounded memory.

An object that already exists with the same sha256 (a re-run after a partial upload) is
kept; one with another digest, or without ours, is a different artifact and the step
refuses. The create itself is conditional (`If-None-Match: *`) so two writers racing for
the same key cannot both win; servers that do not implement conditional writes (older
MinIO/Ceph) get the head check only, and a warning.

Large files go up as a multipart upload read one part at a time: memory is one part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.s3 import S3Client, error_code

log = logging.getLogger(__name__)

MiB = 1024 * 1024
SHA_META = "sha256"
_NOT_SUPPORTED = {"NotImplemented", "501", "InvalidArgument"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


@dataclass
class Uploader:
    client: S3Client
    bucket: str
    part_size: int = 64 * MiB
    conditional: bool = True
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

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

    def _conditional(self, call: Any, key: str, **kwargs: Any) -> Any:
        if self.conditional:
            try:
                return call(**kwargs, IfNoneMatch="*")
            except ClientError as exc:
                code = error_code(exc)
                if code in _CONFLICT:
                    raise StepError(
                        f"s3://{self.bucket}/{key} was created by someone else meanwhile"
                    ) from None
                if code not in _NOT_SUPPORTED:
                    raise
                log.warning("server rejects conditional writes (%s); relying on HEAD", code)
                self.conditional = False
        return call(**kwargs)

    def _put(self, key: str, body: bytes, sha256: str) -> None:
        self._conditional(
            self.client.put_object,
            key,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            Metadata={SHA_META: sha256},
        )

    def _multipart(self, path: Path, key: str, sha256: str) -> None:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata={SHA_META: sha256}
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            with path.open("rb") as handle:
                number = 1
                while chunk := handle.read(self.part_size):
                    response = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                    )
                    parts.append({"PartNumber": number, "ETag": response["ETag"]})
                    number += 1
            self._conditional(
                self.client.complete_multipart_upload,
                key,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError:
                log.warning("could not abort multipart upload %s of %s", upload_id, key)
            raise
        log.info("uploaded %s in %d parts", key, len(parts))
