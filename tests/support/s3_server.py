"""A local S3-compatible server for tests: moto's ThreadedMotoServer on 127.0.0.1."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
_buckets = itertools.count(1)


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self, prefix: str = "results") -> str:
        name = f"{prefix}-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The ILAB_RESULTS_S3_* variables the sync reads."""
        return {
            "ILAB_RESULTS_S3_ENDPOINT": self.endpoint,
            "ILAB_RESULTS_S3_BUCKET": bucket,
            "ILAB_RESULTS_S3_ACCESS_KEY": ACCESS_KEY,
            "ILAB_RESULTS_S3_SECRET_KEY": SECRET_KEY,
            "ILAB_RESULTS_S3_REGION": REGION,
        }


@contextmanager
def running_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
