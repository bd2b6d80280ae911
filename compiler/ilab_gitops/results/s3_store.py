"""`ResultsStore` on boto3: read results.json from the output store with read-only keys."""

from __future__ import annotations

import importlib
from typing import Any

from ilab_gitops.results.locations import S3Settings
from ilab_gitops.results.sync import StoreError

#: results.json and the report files are small; anything larger is not ours.
MAX_RESULTS_BYTES = 32 * 1024 * 1024
#: S3 error codes that asking again will not change.
_LASTING = frozenset({"AccessDenied", "403", "Forbidden", "InvalidObjectState"})


class S3ResultsStore:
    def __init__(self, settings: S3Settings) -> None:
        # boto3 ships no type information; import it as a plain module object.
        boto3: Any = importlib.import_module("boto3")
        config: Any = importlib.import_module("botocore.config")
        self._exceptions: Any = importlib.import_module("botocore.exceptions")
        self._bucket = settings.bucket
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            region_name=settings.region,
            verify=settings.verify_tls,
            config=config.Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            ),
        )

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def get(self, key: str) -> bytes | None:
        errors = self._exceptions
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
            length = int(answer.get("ContentLength") or 0)
            if length > MAX_RESULTS_BYTES:
                raise StoreError(
                    f"{self.uri(key)} is {length} bytes; at most {MAX_RESULTS_BYTES} are read",
                    lasting=True,
                )
            data: bytes = answer["Body"].read(MAX_RESULTS_BYTES + 1)
        except errors.ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StoreError(f"{code or 'error'}: {err}", lasting=code in _LASTING) from err
        except errors.BotoCoreError as err:
            raise StoreError(str(err)) from err
        if len(data) > MAX_RESULTS_BYTES:
            raise StoreError(
                f"{self.uri(key)} is larger than {MAX_RESULTS_BYTES} bytes", lasting=True
            )
        return data
