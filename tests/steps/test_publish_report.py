"""publish also makes the run's report from the workspace and uploads it beside results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilab_gitops.report.inputs import TRAINING_METRICS_FILE
from ilab_gitops.steps import publish
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.uploads import Uploader
from tests.steps.conftest import S3Env
from tests.steps.hf_fake import FakeHub
from tests.steps.test_publish import PREFIX, hub, publish_params, uploaded
from tests.support.report_data import loss_lines, marker

__all__ = ["hub", "uploaded"]  # fixtures used by name


def test_publish_uploads_the_report_and_plots(
    tmp_path: Path, s3: S3Env, hub: FakeHub, uploaded: Path
) -> None:
    steps = uploaded.parent
    phase1 = steps / "r1-train-phase-1-0123abcd"
    (phase1 / "checkpoints").mkdir(parents=True)
    (phase1 / ".done.json").write_text(
        json.dumps(marker("train-phase-1", "2026-11-24T14:40:00Z", run="r1"))
    )
    (phase1 / "checkpoints" / TRAINING_METRICS_FILE).write_text(
        "\n".join(loss_lines(50, 2.0, 1.0, 10, 500)) + "\n"
    )
    params = publish_params(tmp_path, uploaded)
    assert publish.main(["--params", str(params)]) == 0

    keys = {
        o["Key"]
        for o in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{PREFIX}/report/")["Contents"]
    }
    names = ["branch.png", "loss.png", "mt-bench.png", "report.html"]
    assert keys == {f"{PREFIX}/report/{name}" for name in names}
    html = (
        s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/report/report.html")["Body"]
        .read()
        .decode()
    )
    assert '<span class="state ok">finished</span>' in html
    assert "train-phase-1: 50 steps" in html
    assert "No training metrics for train-phase-2." in html
    loss = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/report/loss.png")["Body"].read()
    out = Path(json.loads(params.read_text())["outputPath"])
    assert (out / "report" / "loss.png").read_bytes() == loss
    done = json.loads((out / ".done.json").read_text())
    assert f"s3://{s3.bucket}/{PREFIX}/report/report.html" in done["details"]["report"]

    # A re-run makes the same bytes: the write-once upload finds them there and keeps them.
    for path in sorted(out.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    out.rmdir()
    assert publish.main(["--params", str(params)]) == 0
    again = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/report/loss.png")["Body"].read()
    assert again == loss


def _keys(s3: S3Env, prefix: str) -> set[str]:
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
    return {o["Key"] for o in listed.get("Contents", [])}


def test_results_json_goes_up_only_after_the_report(
    tmp_path: Path,
    s3: S3Env,
    hub: FakeHub,
    uploaded: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """results.json is the sync's commit point: a sync that finds it must find the report
    too. A failed report upload leaves no results.json; the re-run uploads both."""
    results_key = f"{PREFIX}/results.json"
    put_file = Uploader.put_file

    def failing(self: Uploader, path: Path, key: str, sha256: str) -> bool:
        if key.endswith("/report.html"):
            raise StepError(f"injected: uploading {key} failed")
        return put_file(self, path, key, sha256)

    monkeypatch.setattr(Uploader, "put_file", failing)
    params = publish_params(tmp_path, uploaded)
    assert publish.main(["--params", str(params)]) != 0
    assert results_key not in _keys(s3, PREFIX)
    assert f"{PREFIX}/report/report.html" not in _keys(s3, PREFIX)

    written: list[str] = []

    def recording(self: Uploader, path: Path, key: str, sha256: str) -> bool:
        assert results_key not in _keys(s3, PREFIX), f"{key} after results.json"
        written.append(key)
        return put_file(self, path, key, sha256)

    monkeypatch.setattr(Uploader, "put_file", recording)
    assert publish.main(["--params", str(params)]) == 0
    assert f"{PREFIX}/report/report.html" in written
    assert results_key in _keys(s3, PREFIX)
    assert {f"{PREFIX}/report/{name}" for name in ("report.html", "mt-bench.png")} <= _keys(
        s3, f"{PREFIX}/report/"
    )
