"""Benchmark: the four speed ratios of issue 13 and the peers, measured side by side.

Usage:  .venv/bin/python bench/compile.py [--runs 1000] [--repeat 5] [--rss-runs 5000]

Generates N distinct valid runs (names, base-model sources, phase settings, topologies, all
three reference environments) in a temporary runs repo and prints, each as min / median / max
over `--repeat` paired measurements (the two sides of a ratio alternate, so a change in the
machine's load hits both):
  1. re-render after one run changed vs the first full render, on disk (`--disk`);
  2. the first render (whole `ilab-gitops render` process) vs `json.dumps` of the same
     objects in this process, on tmpfs (`--tmp`);
  3. peak RSS of the largest process rendering `--rss-runs` runs;
  4. a cold one-spec `validate` vs `python -c "import pydantic, yaml"` (the package is
     byte-compiled first, as an installed one is);
then the peers: KFP compiling a seven-step pipeline (in `--kfp-python`, skipped with the
reason when that interpreter or kfp is missing) and `kubectl kustomize` on 1 and 100 runs'
step folders (skipped with the reason when kubectl is missing). The machine's load average
is printed before and after: the numbers mean little without it. Not a test.

Rendered files are found by walking the output folder, so the benchmark does not depend on
how deep the tree is (`rendered/<run>/...` or `rendered/<environment>/<run>/...`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Through the venv's python, not the console-script shim, as the targets are stated.
CLI = [sys.executable, "-m", "ilab_gitops.cli.entry"]
BARE = [sys.executable, "-c", "import pydantic, yaml"]

#: Issue 13's targets.
TARGETS = {"rerender": 0.6, "json": 3.5, "rss_mib": 250.0, "cold": 2.5}

KFP_PIPELINE = """
import sys, tempfile
from kfp import compiler, dsl

@dsl.component(base_image="python:3.11")
def step(name: str, previous: str) -> str:
    return previous + "/" + name

@dsl.pipeline(name="ilab-like")
def pipeline(run: str = "granite"):
    previous = run
    for name in ("prepare", "train-phase-1", "train-phase-2", "eval-mt-bench",
                 "eval-final", "upload", "publish"):
        task = step(name=name, previous=previous)
        task.set_cpu_limit("4").set_memory_limit("16Gi").set_env_variable("STEP", name)
        previous = task.output

with tempfile.TemporaryDirectory() as tmp:
    compiler.Compiler().compile(pipeline, f"{tmp}/pipeline.yaml")
"""


def make_repo(root: Path, runs: int) -> None:
    """A runs repo with `runs` distinct, valid runs spread over the reference environments."""
    (root / "runs").mkdir(parents=True)
    shutil.copytree(ROOT / "environments", root / "environments")
    envs = {
        "kind-dev": (1, 1),  # (max nnodes, max nproc) the profile allows
        "single-node-4xh100": (1, 4),
        "multi-node-gpu": (8, 8),
    }
    sources: list[dict[str, Any]] = [
        {"huggingFace": {"repo": "ibm-granite/granite-7b-base", "revision": "a" * 40}},
        {"s3": {"secretRef": {"name": "base-model-store"}, "prefix": "models/granite"}},
        {"pvc": {"claimName": "models", "path": "granite-7b"}},
    ]
    for i in range(runs):
        env_name = list(envs)[i % len(envs)]
        max_nodes, max_proc = envs[env_name]
        spec = {
            "apiVersion": "gitops.instructlab.ai/v1alpha1",
            "kind": "PipelineRun",
            "metadata": {"name": f"bench-{i:05d}"},
            "spec": {
                "environment": env_name,
                "attempt": i % 3,
                "baseModel": sources[i % len(sources)],
                "sdgData": {"secretRef": {"name": "sdg-object-store"}},
                "taxonomy": {
                    "repoUrl": "https://github.com/example/taxonomy",
                    "commit": hashlib.sha1(str(i).encode()).hexdigest(),
                    "pullRequests": [i + 1, i + 2],
                },
                "training": {
                    "nnodes": 1 + i % max_nodes,
                    "nprocPerNode": 1 + i % max_proc,
                    "knowledge": {
                        "epochs": 1 + i % 9,
                        "effectiveBatchSize": 128,
                        "learningRate": 2e-5 * (1 + i % 5),
                    },
                    "skills": {
                        "epochs": 1 + i % 11,
                        "effectiveBatchSize": 3840,
                        "learningRate": 6e-6,
                    },
                },
                "evaluation": {"judgeSecretRef": {"name": "judge"}},
                "output": {"secretRef": {"name": "out"}},
            },
        }
        text = yaml.safe_dump(spec, sort_keys=False)
        (root / "runs" / f"bench-{i:05d}.yaml").write_text(text)


def change_one_run(repo: Path, round_: int) -> None:
    """A new `attempt` for the first run: every one of its steps is renamed."""
    path = repo / "runs" / "bench-00000.yaml"
    data = yaml.safe_load(path.read_text())
    data["spec"]["attempt"] = 10 + round_
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def wall(command: list[str], cwd: Path | None = None) -> float:
    """Wall time of one process; raises if it fails."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def peak_rss_mib(command: list[str], cwd: Path) -> float:
    """Peak RSS of the largest process of the command's tree (the child and the workers it
    waited for), from the kernel's accounting of exactly that child."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, command)
    return usage.ru_maxrss / 1024


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (inode, mtime_ns)} of every file below `root`, at any depth."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            st = path.stat()
            found[path.relative_to(root).as_posix()] = (st.st_ino, st.st_mtime_ns)
    return found


def run_folders(root: Path) -> list[Path]:
    """Folders holding a run's step folders (`*/manifests.yaml`), whatever their depth."""
    runs = {Path(folder).parent for folder, _, names in os.walk(root) if "manifests.yaml" in names}
    return sorted(runs)


def spread(values: list[float], digits: int = 3) -> str:
    return " / ".join(
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def compiled_objects(repo: Path) -> list[dict[str, Any]]:
    """Every object a render writes (steps' objects and the Flux Kustomizations)."""
    from ilab_gitops.cli.core import batch_memory
    from ilab_gitops.load.workspace import load_workspace
    from ilab_gitops.manifests import compile_run

    cwd = Path.cwd()
    os.chdir(repo)
    try:
        with batch_memory():
            ws = load_workspace([Path("runs")], Path("environments"))
            assert ws.ok, ws.diagnostics[:3]
            manifests = [compile_run(r.run, r.environment) for r in ws.runs]
    finally:
        os.chdir(cwd)
    return [obj for m in manifests for obj in (*m.objects(), *m.flux)]


def rerender_pairs(repo: Path, disk: Path, repeat: int) -> tuple[list[float], list[str]]:
    """Ratio 1, on disk: (re-render time / first render time) per round, and what each
    re-render rewrote."""
    ratios, notes = [], []
    for n in range(repeat):
        out = disk / f"rendered-{n}"
        first = wall([*CLI, "render", "runs", "--out", str(out)], repo)
        before = files_under(out)
        change_one_run(repo, n)
        again = wall([*CLI, "render", "runs", "--out", str(out)], repo)
        after = files_under(out)
        kept = sum(1 for path, key in after.items() if before.get(path) == key)
        notes.append(f"{len(after) - kept} of {len(after)} files new or rewritten")
        ratios.append(again / first)
        shutil.rmtree(out)
    return ratios, notes


def json_pairs(repo: Path, tmp: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Ratio 2, on tmpfs: (render process time / json.dumps time) per round."""
    objects = compiled_objects(repo)
    renders, dumps, ratios = [], [], []
    for n in range(repeat):
        renders.append(wall([*CLI, "render", "runs", "--out", str(tmp / f"first-{n}")], repo))
        start = time.perf_counter()
        for obj in objects:
            json.dumps(obj)
        dumps.append(time.perf_counter() - start)
        ratios.append(renders[-1] / dumps[-1])
        shutil.rmtree(tmp / f"first-{n}")
    return renders, dumps, ratios


def cold_pairs(repo: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Ratio 4: (one-spec validate / bare import) per round."""
    one = [*CLI, "validate", "runs/bench-00001.yaml", "--environments", "environments"]
    validates, bares, ratios = [], [], []
    for _ in range(repeat):
        validates.append(wall(one, repo))
        bares.append(wall(BARE, repo))
        ratios.append(validates[-1] / bares[-1])
    return validates, bares, ratios


def peers(repo: Path, tmp: Path, repeat: int, kfp_python: str) -> list[str]:
    lines = []
    kfp = Path(kfp_python)
    if not kfp.exists():
        lines.append(f"KFP compile: skipped, {kfp_python} does not exist (make bench builds it)")
    elif subprocess.run([kfp, "-c", "import kfp"], check=False, capture_output=True).returncode:
        lines.append(f"KFP compile: skipped, kfp does not import in {kfp_python}")
    else:
        script = tmp / "kfp_pipeline.py"  # a file: kfp reads the components' source
        script.write_text(KFP_PIPELINE)
        times = [wall([str(kfp), str(script)]) for _ in range(repeat)]
        lines.append(f"KFP compile, one 7-step pipeline, process   {spread(times)} s")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        lines.append("kubectl kustomize: skipped, kubectl is not on PATH")
        return lines
    out = tmp / "kustomize-input"
    subprocess.run(
        [*CLI, "render", "runs", "--out", str(out)], cwd=repo, check=True, capture_output=True
    )
    runs = run_folders(out)
    for count in (1, 100):
        target = tmp / f"kz{count}"
        target.mkdir()
        steps = [
            step / "manifests.yaml"
            for run in runs[:count]
            for step in sorted(run.iterdir())
            if (step / "manifests.yaml").is_file()
        ]
        (target / "kustomization.yaml").write_text(
            "resources:\n" + "".join(f"- {os.path.relpath(p, target)}\n" for p in steps)
        )
        command = [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(target)]
        ours = [*CLI, "render", *(f"runs/{run.name}.yaml" for run in runs[:count]), "--out", "-"]
        times, own = [], []
        for _ in range(repeat):
            times.append(wall(command))
            own.append(wall(ours, repo))
        lines.append(
            f"kubectl kustomize, {len(runs[:count]):>3} run(s), {len(steps):>3} files  "
            f"{spread(times)} s"
            f"   (ours, render --out - of the same runs: {spread(own)} s)"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rss-runs", type=int, default=5000)
    parser.add_argument(
        "--tmp",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="tmpfs for the runs repo and the render-vs-json ratio (default /dev/shm)",
    )
    parser.add_argument(
        "--disk",
        default=str(ROOT / ".bench-disk"),
        help="a folder on disk for the re-render ratio (default .bench-disk/ in the checkout)",
    )
    parser.add_argument("--kfp-python", default=str(ROOT / ".venv-kfp" / "bin" / "python"))
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # The project's modules from bytecode, as pip leaves an installed package (the
    # dependencies in the venv already are): a checkout under PYTHONDONTWRITEBYTECODE would
    # otherwise compile ~20 modules from source at every start, ~20 ms of a cold validate.
    package = ROOT / "compiler" / "ilab_gitops"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    load_before = load()
    started = time.perf_counter()
    disk = Path(args.disk)
    disk.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="ilab-bench-", dir=args.tmp) as tmp_name,
        tempfile.TemporaryDirectory(prefix="ilab-bench-", dir=disk) as disk_name,
    ):
        tmp = Path(tmp_name)
        repo = tmp / "repo"
        make_repo(repo, args.runs)
        n_objects = len(compiled_objects(repo))
        renders, dumps, json_ratios = json_pairs(repo, tmp, args.repeat)
        rerender, rewritten = rerender_pairs(repo, Path(disk_name), args.repeat)
        validates, bares, cold_ratios = cold_pairs(repo, args.repeat)
        big = tmp / "big"
        make_repo(big, args.rss_runs)
        rss = [
            peak_rss_mib([*CLI, "render", "runs", "--out", str(tmp / f"rss-{n}")], big)
            for n in range(args.repeat)
        ]
        peer_lines = peers(repo, tmp, args.repeat, args.kfp_python)
    load_after = load()

    print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}, "
          f"on {os.cpu_count()} CPU(s); {time.perf_counter() - started:.0f} s in all")  # fmt: skip
    print(f"N = {args.runs} runs, {n_objects} objects (Flux Kustomizations included), "
          f"{args.repeat} paired repeats; min / median / max")  # fmt: skip
    print(
        f"1. re-render, one run changed / first render, on disk   {spread(rerender, 2)} x"
        f"   [target <= {TARGETS['rerender']}x]  ({rewritten[-1]})"
    )
    print(
        f"2. first render, process / json.dumps, tmpfs          {spread(json_ratios, 2)} x"
        f"   [target <= {TARGETS['json']}x]  (render {spread(renders)} s, "
        f"json.dumps {spread(dumps)} s)"
    )
    print(
        f"3. peak RSS, largest process, {args.rss_runs} runs          {spread(rss, 0)} MiB"
        f"   [target <= {TARGETS['rss_mib']:.0f} MiB]"
    )
    print(
        f"4. cold one-spec validate / bare import               {spread(cold_ratios, 2)} x"
        f"   [target <= {TARGETS['cold']}x]  (validate {spread(validates)} s, "
        f"python -c 'import pydantic, yaml' {spread(bares)} s)"
    )
    print("peers:")
    for line in peer_lines:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
