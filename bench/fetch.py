"""Benchmark: streaming fetch+extract (prepare's path) vs download_file + `tar -xzf`.

Not a test. Starts a local S3 server (moto) on 127.0.0.1, uploads a gzip tarball of the
given size (incompressible payload, so the tarball is that big), then times both ways in
fresh subprocesses and reports wall time, the ratio, and each one's peak RSS.

    .venv-steps/bin/python -m bench.fetch --size-mib 1024
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import typing
from pathlib import Path

CHUNK = 1024 * 1024


def make_tarball(path: Path, size_mib: int, files: int = 8) -> None:
    per_file = size_mib * CHUNK // files
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for folder in ("model", "taxonomy"):
            info = tarfile.TarInfo(f"{folder}/README")
            info.size = 0
            tar.addfile(info, io.BytesIO(b""))
        for index in range(files):
            info = tarfile.TarInfo(f"data/part-{index:03d}.bin")
            info.size = per_file
            reader = io.BufferedReader(io.FileIO(os.open("/dev/urandom", os.O_RDONLY)))
            tar.addfile(info, _Limited(reader, per_file))


class _Limited(io.RawIOBase):
    def __init__(self, source: typing.BinaryIO, size: int) -> None:
        self.source, self.left = source, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.source.read(n)
        self.left -= len(data)
        return data


CHILD = r"""
import json, os, subprocess, sys, time
from pathlib import Path

def hwm_mib():
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child started by a big
    # parent would report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

mode, endpoint, bucket, key, dest = sys.argv[1:6]
from ilab_gitops.steps.s3 import S3Settings, make_client
client = make_client(S3Settings(bucket, "a", "s", endpoint, "us-east-1", False))
start = time.perf_counter()
if mode == "stream":
    from ilab_gitops.steps.prepare import fetch_sdg
    fetch_sdg(client, bucket, key, Path(dest), None)
else:
    tarball = Path(dest).parent / "download.tar.gz"
    client.download_file(bucket, key, str(tarball))
    tar = subprocess.run(["/usr/bin/time", "-f", "%M", "tar", "-xzf", str(tarball), "-C", dest],
                         check=True, capture_output=True, text=True)
    tar_mib = int(tar.stderr.strip().splitlines()[-1]) / 1024
    tarball.unlink()
elapsed = time.perf_counter() - start
peak = hwm_mib()
if mode != "stream":
    peak = max(peak, tar_mib)
print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak}))
"""


def run_child(mode: str, endpoint: str, bucket: str, key: str, work: Path) -> dict[str, float]:
    dest = work / f"out-{mode}"
    dest.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, endpoint, bucket, key, str(dest)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    shutil.rmtree(dest)
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: tmp)")
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    work = Path(tempfile.mkdtemp(dir=args.work, prefix="bench-fetch-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="s",
        )
        client.create_bucket(Bucket="bench")
        tarball = work / "sdg.tar.gz"
        started = time.perf_counter()
        make_tarball(tarball, args.size_mib)
        client.upload_file(str(tarball), "bench", "sdg.tar.gz")
        size = tarball.stat().st_size
        tarball.unlink()
        print(f"tarball: {size / CHUNK:.0f} MiB (prepared in {time.perf_counter() - started:.1f}s)")
        stream = run_child("stream", endpoint, "bench", "sdg.tar.gz", work)
        classic = run_child("classic", endpoint, "bench", "sdg.tar.gz", work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"streaming fetch+extract+sha256:  {stream['seconds']:7.2f}s  "
        f"peak RSS {stream['peak_rss_mib']:6.0f} MiB  (no tarball copy on disk)"
    )
    print(
        f"download_file + tar -xzf:        {classic['seconds']:7.2f}s  "
        f"peak RSS {classic['peak_rss_mib']:6.0f} MiB  (+{size / CHUNK:.0f} MiB on disk)"
    )
    print(f"ratio streaming/classic: {stream['seconds'] / classic['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
