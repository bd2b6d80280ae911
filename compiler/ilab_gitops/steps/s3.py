"""S3-compatible object storage: settings from the Secret's env vars, clients, resumable reads.

Secrets follow ilab-on-ocp's layout (bucket, access_key, secret_key, endpoint, region,
verify_tls); the manifests expose them as `ILAB_<PREFIX>_<KEY>`. Clients use path-style
addressing and checksums only "when required", because MinIO, Ceph RGW and NooBaa releases
still in the field reject the CRC trailers boto3 sends by default since 1.36.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from ilab_gitops.steps.runtime import StepError, optional_env, secret_env

# boto3 clients are generated at run time; `types-boto3[s3]` would type them, at the cost of
# another pinned dependency in every image.
S3Client = Any

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Errors after which re-reading the rest of an object can succeed.
TRANSIENT_READ_ERRORS: tuple[type[BaseException], ...] = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
    EndpointConnectionError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class S3Settings:
    """One bucket's connection settings; `verify` is True, False or a CA bundle path."""

    bucket: str
    access_key: str
    secret_key: str
    endpoint: str | None
    region: str | None
    verify: bool | str


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise StepError(f"{name}={value!r}: expected true or false")


def settings_from_env(prefix: str, secret_desc: str, ca_bundle: str | None) -> S3Settings:
    """Read `ILAB_<prefix>_*`; `secret_desc` says which Secret a missing key belongs in."""

    def need(suffix: str) -> str:
        key = suffix.lower()
        return secret_env(f"ILAB_{prefix}_{suffix}", f"add key '{key}' to {secret_desc}")

    bucket, access_key, secret_key = need("BUCKET"), need("ACCESS_KEY"), need("SECRET_KEY")
    verify: bool | str = parse_bool(
        f"ILAB_{prefix}_VERIFY_TLS", optional_env(f"ILAB_{prefix}_VERIFY_TLS"), True
    )
    if verify and ca_bundle:
        if not Path(ca_bundle).is_file():
            raise StepError(f"CA bundle {ca_bundle} is not mounted (check the ConfigMap key)")
        verify = ca_bundle
    return S3Settings(
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        endpoint=optional_env(f"ILAB_{prefix}_ENDPOINT"),
        region=optional_env(f"ILAB_{prefix}_REGION"),
        verify=verify,
    )


def make_client(
    settings: S3Settings, *, max_attempts: int = 5, read_timeout: float = 60.0
) -> S3Client:
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=read_timeout,
        s3={"addressing_style": "path" if settings.endpoint else "auto"},
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint,
        region_name=settings.region or "us-east-1",
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        verify=settings.verify,
        config=config,
    )
    return client


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ResumableObjectReader(io.RawIOBase):
    """A read-once stream of one S3 object that survives dropped connections.

    When the connection breaks mid-body, it asks for the rest with `Range: bytes=<pos>-`
    and `If-Match: <etag>`, so the consumer (hashlib + tarfile) never notices and the
    object cannot change under it. Every byte passes through `sha256` exactly once.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        max_resumes: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._max_resumes, self._backoff_s, self._sleep = max_resumes, backoff_s, sleep
        self.resumes = 0
        self.position = 0
        self.sha256 = hashlib.sha256()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = error_code(exc)
            if code in {"NoSuchKey", "404", "NoSuchBucket"}:
                raise StepError(f"s3://{bucket}/{key} does not exist ({code})") from None
            if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise StepError(f"s3://{bucket}/{key}: access denied ({code})") from None
            raise
        self.etag: str = response["ETag"]
        self.size: int = int(response["ContentLength"])
        self._body: Any = response["Body"]

    @property
    def uri(self) -> str:
        return f"s3://{self._bucket}/{self._key}"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self.position >= self.size:
                return 0
            try:
                data: bytes = self._body.read(len(view))
            except TRANSIENT_READ_ERRORS as exc:
                self._resume(exc)
                continue
            if not data:
                self._resume(ConnectionError("connection closed before the end of the object"))
                continue
            count = len(data)
            view[:count] = data
            self.sha256.update(data)
            self.position += count
            return count

    def _resume(self, cause: BaseException) -> None:
        self.resumes += 1
        if self.resumes > self._max_resumes:
            raise StepError(
                f"download of {self.uri} failed at byte {self.position} of {self.size} "
                f"after {self._max_resumes} resumes: {cause}"
            ) from cause
        delay = self._backoff_s * 2 ** (self.resumes - 1)
        log.warning(
            "%s: read failed at byte %d of %d (%s); resuming in %.1fs (%d/%d)",
            self.uri,
            self.position,
            self.size,
            cause,
            delay,
            self.resumes,
            self._max_resumes,
        )
        self._sleep(delay)
        try:
            self._body.close()
        except Exception:  # the old connection is already broken; closing is best effort
            log.debug("closing the broken body failed", exc_info=True)
        try:
            response = self._client.get_object(
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={self.position}-",
                IfMatch=self.etag,
            )
        except ClientError as exc:
            if error_code(exc) in {"PreconditionFailed", "412"}:
                raise StepError(f"{self.uri} changed while it was being downloaded") from None
            raise
        except TRANSIENT_READ_ERRORS as exc:
            self._resume(exc)
            return
        self._body = response["Body"]

    def close(self) -> None:
        body = getattr(self, "_body", None)
        if body is not None:
            try:
                body.close()
            except Exception:
                log.debug("closing body failed", exc_info=True)
        super().close()
