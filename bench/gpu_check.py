"""The training path end to end on a GPU machine: what CPU tests cannot show.

Two halves, because the GPU machine is bare (no network, torch already installed):

    prepare  (here, in .venv-steps, with the package registry): a wheels folder with what the
             train step needs beyond torch/transformers (pip download, as
             ../shared/design/GPU.md describes), a tiny Llama made locally, both phases' data
             tokenized by the prepare step's own code, and the train steps' params compiled
             by the real compiler for a one-node, one-GPU environment.
    run      (there, with its python3): install the wheels into a folder of their own, a
             fail-fast import check, then each part under its own timeout: the CUDA test as
             shipped (tests/steps/test_train.py), phase 1 and phase 2 as the pods run them
             (`python -m ilab_gitops.steps.train --params ...` with the training operator's
             env), a re-run of phase 2 (must exit 0 at once). The evidence comes last:
             times, checkpoints, which attention, full states left.

`run --rehearse` does the same on a CPU machine up to the first CUDA call and says so.
Nothing here is a test: it is a check a person runs on a GPU and reads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".gpu-check"
WORKSPACE = "/workspace"

#: What the train step and its tests need beyond torch/transformers/accelerate, one version
#: each (the set that installed and imported on the H200 in ../shared/design/GPU.md).
WHEELS = (
    "instructlab-training==0.16.2",
    "datasets==5.2.0",
    "dill==0.4.1",
    "multiprocess==0.70.19",
    "trl==1.16.0",
    "pydantic==2.14.3",
    "pydantic-core==2.50.4",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "wheel==0.48.0",
    # The step tests' conftest needs boto3 and moto, or it skips every test module.
    "boto3==1.44.8",
    "botocore==1.44.8",
    "s3transfer==0.19.3",
    "jmespath==1.1.0",
    "moto==5.2.5",
    "responses==0.26.3",
    "xmltodict==1.0.4",
    "cryptography==50.0.2",
    "cffi==2.1.1",
    "pycparser==3.12",
)

#: The operator's env for the master pod of a one-node PyTorchJob.
OPERATOR_ENV = {
    "PET_NNODES": "1",
    "PET_NODE_RANK": "0",
    "PET_NPROC_PER_NODE": "1",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
    "WORLD_SIZE": "1",
    "RANK": "0",
}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

#: Tiny-run settings: two epochs in phase 1 so `fullState: last` has something to prune.
MAX_SEQ_LEN = 256
TRAINING: dict[str, Any] = {
    "nprocPerNode": 1,
    "maxSeqLen": MAX_SEQ_LEN,
    "maxBatchLen": 2048,
    "saveSamples": 16,
    "flashAttention": "auto",
    "checkpoints": {"fullState": "last"},
    "knowledge": {"epochs": 2, "effectiveBatchSize": 8, "learningRate": 1e-3, "warmupSteps": 0},
    "skills": {"epochs": 1, "effectiveBatchSize": 8, "learningRate": 1e-3, "warmupSteps": 0},
}


def say(message: str) -> None:
    print(f"[gpu-check] {message}", flush=True)


# --------------------------------------------------------------------------------- prepare


def download_wheels(dest: Path, python_version: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
        "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--dest", str(dest), *WHEELS,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    (dest / "PYTHON_VERSION").write_text(python_version + "\n", encoding="utf-8")


def compiled_train_params() -> dict[str, dict[str, Any]]:
    """The train steps' params.json as the compiler writes them for a one-GPU node."""
    import yaml

    from ilab_gitops.manifests.compile import compile_run
    from ilab_gitops.spec.environment import Environment
    from ilab_gitops.spec.pipeline_run import PipelineRun

    env_data = yaml.safe_load((ROOT / "environments" / "single-node-4xh100.yaml").read_text())
    env_data["spec"]["gpu"]["perNode"] = 1
    run_data = yaml.safe_load((ROOT / "spec" / "examples" / "minimal.yaml").read_text())
    run_data["metadata"]["name"] = "gpu-check"
    run_data["spec"]["environment"] = env_data["metadata"]["name"]
    run_data["spec"]["training"] = TRAINING
    manifests = compile_run(
        PipelineRun.model_validate(run_data), Environment.model_validate(env_data)
    )
    out: dict[str, dict[str, Any]] = {}
    for step in manifests.steps:
        if not step.step_id.startswith("train-"):
            continue
        for obj in step.objects:
            if obj["kind"] == "PyTorchJob":
                replicas = obj["spec"]["pytorchReplicaSpecs"]
                if set(replicas) != {"Master"}:
                    raise SystemExit(
                        f"{step.step_id}: a one-node environment got {sorted(replicas)}"
                    )
            if obj["kind"] == "ConfigMap":
                out[step.step_id] = json.loads(obj["data"]["params.json"])
    return out


def prepare(out: Path, *, wheels: bool, python_version: str) -> None:
    from tests.steps.builders import sdg_jsonl
    from tests.steps.tinymodel import make_tiny_model

    from ilab_gitops.steps import data

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if wheels:
        say(f"downloading wheels for Python {python_version} into {out / 'wheels'}")
        download_wheels(out / "wheels", python_version)
    params = compiled_train_params()
    prepared = params["train-phase-1"]["modelPath"].removesuffix("/model")
    workdir = out / "work" / prepared.removeprefix(WORKSPACE + "/")
    say(f"tiny model and tokenized data in {workdir}")
    make_tiny_model(workdir / "model")
    sdg = workdir / "data"
    sdg.mkdir(parents=True)
    (sdg / "knowledge_train_msgs_gpu-check.jsonl").write_bytes(sdg_jsonl(64, "knowledge"))
    (sdg / "skills_train_msgs_gpu-check.jsonl").write_bytes(sdg_jsonl(32, "skills"))
    for phase in data.PHASES:
        data.process_phase(
            sdg, phase, workdir / "processed" / phase, model=workdir / "model",
            max_seq_len=MAX_SEQ_LEN, procs=1,
        )  # fmt: skip
    (out / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    say(f"prepared {out}; copy the checkout with it to the GPU machine and run `make gpu-check`")


# ------------------------------------------------------------------------------------- run


def timed(
    name: str, command: list[str], env: dict[str, str], timeout_s: int, log_dir: Path
) -> dict[str, Any]:
    """Run one part under its own timeout (its whole process group is killed at the end of
    it: torchrun's workers too); the output goes to a log file, its tail to the screen."""
    say(f"{name}: {' '.join(command)} (timeout {timeout_s}s)")
    log_path = log_dir / f"{name}.log"
    start = time.monotonic()
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = 124
    seconds = round(time.monotonic() - start, 1)
    lines = log_path.read_text(errors="replace").strip().splitlines()
    for line in lines[-15:]:
        print(f"    {line[:300]}")
    say(f"{name}: exit {rc} after {seconds}s" + (" (timed out)" if rc == 124 else ""))
    return {"part": name, "exit": rc, "seconds": seconds, "lines": lines}


def step_env(out: Path, site: Path | None) -> dict[str, str]:
    paths = [str(p) for p in (site, ROOT / "compiler", ROOT) if p is not None]
    old = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PYTHONPATH": os.pathsep.join(paths + ([old] if old else [])),
    }
    env["HF_DATASETS_CACHE"] = str(out / "cache" / "datasets")
    env["HF_HOME"] = str(out / "cache" / "hf")
    return env


def localized_params(out: Path, step_id: str) -> Path:
    """The compiled params with /workspace pointing at the prepared work folder."""
    raw = json.loads((out / "params.json").read_text())[step_id]
    work = str((out / "work").resolve())
    text = json.dumps(raw).replace(f'"{WORKSPACE}/', f'"{work}/')
    path = out / "run" / f"{step_id}.json"
    path.write_text(text + "\n")
    return path


def phase_evidence(out: Path, step_id: str) -> dict[str, Any]:
    params = json.loads(localized_params(out, step_id).read_text())
    output = Path(params["outputPath"])
    marker_path = output / ".done.json"
    marker = json.loads(marker_path.read_text()) if marker_path.is_file() else {}
    details = marker.get("details", {})
    full_state = output / "checkpoints" / "full_state"
    return {
        "step": step_id,
        "checkpoints": [c["name"] for c in details.get("checkpoints", [])],
        "baseModel": details.get("baseModel"),
        "flashAttention": details.get("flashAttention"),
        "fullStateLeft": sorted(p.name for p in full_state.iterdir())
        if full_state.is_dir()
        else [],
        "done": marker_path.is_file(),
    }


def run(out: Path, args: argparse.Namespace) -> int:
    if not (out / "params.json").is_file():
        say(f"{out} is not prepared: run `make gpu-check-prepare` on a machine with the registry")
        return 2
    shutil.rmtree(out / "run", ignore_errors=True)
    (out / "run" / "logs").mkdir(parents=True)
    logs = out / "run" / "logs"
    results: list[dict[str, Any]] = []
    site: Path | None = None
    wheels = sorted((out / "wheels").glob("*.whl"))
    tag = (out / "wheels" / "PYTHON_VERSION").read_text().strip() if wheels else ""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wheels and tag != here and not args.no_install:
        if not args.rehearse:
            say(f"the wheels are for Python {tag}, this is {here}: prepare --python-version {here}")
            return 2
        say(f"rehearsal: wheels are for Python {tag}, this is {here}; using installed packages")
    elif wheels and not args.no_install:
        site = out / "run" / "site"
        results.append(timed("install-wheels", [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
            "--target", str(site), *map(str, wheels),
        ], dict(os.environ), args.timeout_install, logs))  # fmt: skip
    env = step_env(out, site)
    probe = (
        "import torch, instructlab.training, ilab_gitops.steps.train as t; "
        "c = torch.cuda.is_available(); "
        "print('torch', torch.__version__, 'cuda', c, "
        "torch.cuda.get_device_name(0) if c else '-', "
        "torch.cuda.get_device_capability(0) if c else '-')"
    )
    check = timed("import-check", [sys.executable, "-c", probe], env, 300, logs)
    results.append(check)
    cuda = any(line.startswith("torch ") and " cuda True " in line for line in check["lines"])
    if check["exit"] != 0:
        return report(results, [], "the import check failed: nothing else was run", ok=False)
    if not cuda and not args.rehearse:
        return report(results, [], "no CUDA device: use --rehearse on a CPU machine", ok=False)
    test_cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                "tests/steps/test_train.py", "-k", "tiny_model"]  # fmt: skip
    results.append(timed("cuda-test", test_cmd, env, args.timeout_test, logs))
    phases = []
    for step_id in ("train-phase-1", "train-phase-2"):
        params = localized_params(out, step_id)
        command = [sys.executable, "-m", "ilab_gitops.steps.train", "--params", str(params)]
        result = timed(step_id, command, {**env, **OPERATOR_ENV, "ILAB_PARAMS": str(params)},
                       args.timeout_phase, logs)  # fmt: skip
        results.append(result)
        if args.rehearse:
            stopped = result["exit"] == 2 and any(
                "no CUDA device in this pod" in line for line in result["lines"][-3:]
            )
            verdict = (
                "rehearsal stopped at the first CUDA call (the train step's "
                "torch.cuda.is_available() check), as it should on CPU; nothing ran on a GPU"
                if stopped
                else "rehearsal did NOT stop where expected: read the log above"
            )
            earlier_ok = all(r["exit"] == 0 for r in results[:-1])
            return report(results, [], verdict, ok=stopped and earlier_ok)
        phases.append(phase_evidence(out, step_id))
        if result["exit"] != 0:
            return report(results, phases, f"{step_id} failed", ok=False)
    params = localized_params(out, "train-phase-2")
    command = [sys.executable, "-m", "ilab_gitops.steps.train", "--params", str(params)]
    results.append(timed("train-phase-2-rerun", command, {**env, **OPERATOR_ENV}, 120, logs))
    rerun = results[-1]
    quick = rerun["exit"] == 0 and any("already done" in line for line in rerun["lines"])
    ok = all(r["exit"] == 0 for r in results) and quick
    verdict = "all parts passed; the re-run found phase 2 done" if ok else "some part failed"
    return report(results, phases, verdict, ok=ok)


def report(
    results: list[dict[str, Any]], phases: list[dict[str, Any]], verdict: str, *, ok: bool
) -> int:
    """The evidence, printed last so it is what a person reads first."""
    print("\n===== gpu-check evidence =====")
    for r in results:
        last = r["lines"][-1][:200] if r["lines"] else ""
        print(f"{r['part']:<22} exit {r['exit']:<4} {r['seconds']:>8}s  {last}")
    for p in phases:
        print(json.dumps(p, sort_keys=True))
    print(f"verdict: {verdict}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="wheels, tiny model, data and params (needs .venv-steps)")
    prep.add_argument("--out", type=Path, default=DEFAULT_OUT)
    prep.add_argument("--no-wheels", action="store_true", help="skip pip download")
    prep.add_argument("--python-version", default="3.12", help="of the GPU machine's python3")
    go = sub.add_parser("run", help="run the training path (on the GPU machine)")
    go.add_argument("--out", type=Path, default=DEFAULT_OUT)
    go.add_argument("--rehearse", action="store_true", help="CPU: stop at the first CUDA call")
    go.add_argument("--no-install", action="store_true", help="use this python's packages")
    go.add_argument("--timeout-install", type=int, default=300)
    go.add_argument("--timeout-test", type=int, default=300)
    go.add_argument("--timeout-phase", type=int, default=600)
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "compiler"), str(ROOT)]
    if args.command == "prepare":
        prepare(args.out, wheels=not args.no_wheels, python_version=args.python_version)
        return 0
    return run(args.out, args)


if __name__ == "__main__":
    raise SystemExit(main())
