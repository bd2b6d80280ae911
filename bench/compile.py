"""Benchmark: render and validate a runs repo of N runs, against the serialization floor.

Usage:  .venv/bin/python bench/compile.py [--runs 1000] [--repeat 5] [--kubectl]

Generates N distinct valid runs (names, base-model sources, phase settings, topologies,
environments) in a temporary runs repo, then measures side by side, each `--repeat` times:
  - `ilab-gitops render` of all runs (whole process, cold) and its peak RSS;
  - `ilab-gitops validate` of all runs (whole process);
  - in-process compile, and compile + serialize, per run;
  - the floor: json.dumps of the same objects, PyYAML's C and pure-Python dumpers;
  - cold start of a one-spec `validate` and one-run `render` against
    `python -c "import pydantic, yaml"` (through the venv's python, not a shim);
  - `kubectl kustomize` on one run folder and on 10 / 100 runs, when kubectl exists.
Prints min / median / max and the ratios the targets are stated in. Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Through the venv's python, not the console-script shim, as the targets are stated.
CLI = [sys.executable, "-m", "ilab_gitops.entry"]

TARGETS = {
    "render_all_s": 2.0,
    "validate_all_s": 1.0,
    "cold_start_s": 0.25,
    "cold_start_ratio": 2.5,
    "json_ratio": 4.0,
    "objects_per_s": 5000,
    "peak_rss_mib": 200,
}


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


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def run_cli(args: list[str], cwd: Path) -> float:
    """Wall time of one CLI process; raises if it fails."""
    start = time.perf_counter()
    subprocess.run([*CLI, *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process and its descendants (Linux /proc), in KiB: forked
    workers share the parent's pages copy-on-write, so summing RSS would count them twice."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += next(
                int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total


def peak_rss_mib(args: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS of the largest single process, peak PSS summed over the process tree).

    The first comes from the kernel (ru_maxrss of the children); the second is sampled every
    5 ms, since render forks workers on large batches and their memory adds up.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.Popen(
        [*CLI, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peak_tree = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_pss_kib(proc.pid))
        time.sleep(0.005)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    single = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return single / 1024, peak_tree / 1024


def stats(values: list[float]) -> str:
    return f"min {min(values):.3f}  median {statistics.median(values):.3f}  max {max(values):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kubectl", action="store_true", help="also time kubectl kustomize")
    parser.add_argument(
        "--tmp",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the runs repo and outputs go (default: tmpfs, so the numbers measure the "
        "tool and not the disk; pass a disk path to include it)",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    report: dict[str, Any] = {"runs": args.runs, "repeat": args.repeat}
    print(f"runs repo and outputs in {args.tmp or tempfile.gettempdir()}")
    with tempfile.TemporaryDirectory(prefix="ilab-bench-", dir=args.tmp) as tmp:
        repo = Path(tmp)
        make_repo(repo, args.runs)

        # Whole-process render (cold: a fresh output dir every time) and validate.
        render_times = []
        for n in range(args.repeat):
            render_times.append(run_cli(["render", "runs", "--out", f"out{n}"], repo))
        validate_times = [
            run_cli(["validate", "runs", "environments"], repo) for _ in range(args.repeat)
        ]
        report["rss_mib"], report["tree_rss_mib"] = peak_rss_mib(
            ["render", "runs", "--out", "out-rss"], repo
        )

        # In-process: the same pipeline, split into its stages.
        from ilab_gitops import yaml_emit
        from ilab_gitops.commands.core import batch_memory
        from ilab_gitops.manifests import compile_run
        from ilab_gitops.workspace import load_workspace

        cwd = Path.cwd()
        os.chdir(repo)
        try:
            ws = load_workspace([Path("runs")], Path("environments"))
        finally:
            os.chdir(cwd)
        assert ws.ok and len(ws.runs) == args.runs, ws.diagnostics[:3]
        pairs = [(r.run, r.environment) for r in ws.runs]
        # As the CLI does it: the cyclic collector paused while compiling a batch.
        with batch_memory():
            compile_times = timed(lambda: [compile_run(r, e) for r, e in pairs], args.repeat)
        compiled = [compile_run(r, e) for r, e in pairs]
        objects = [o for m in compiled for o in (*m.objects(), *m.flux)]
        emit_times = timed(lambda: [yaml_emit.dump(o) for o in objects], args.repeat)
        json_times = timed(lambda: [json.dumps(o) for o in objects], args.repeat)
        sample = objects[: min(len(objects), 1000)]
        c_dump = timed(
            lambda: [yaml.dump(o, Dumper=yaml.CSafeDumper) for o in sample],
            max(1, args.repeat // 2),
        )
        py_dump = timed(
            lambda: [yaml.dump(o, Dumper=yaml.SafeDumper) for o in sample], max(1, args.repeat // 2)
        )

        # Cold start: one spec, against importing pydantic + yaml in the same interpreter.
        one = ["validate", "runs/bench-00000.yaml", "--environments", "environments"]
        cold_validate = [run_cli(one, repo) for _ in range(args.repeat * 2)]
        one_render = ["render", "runs/bench-00000.yaml", "--out", "-"]
        cold_render = [run_cli(one_render, repo) for _ in range(args.repeat * 2)]
        bare = []
        for _ in range(args.repeat * 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import pydantic, yaml"], check=True)
            bare.append(time.perf_counter() - start)

        kubectl = shutil.which("kubectl") if args.kubectl else None
        kustomize: dict[str, list[float]] = {}
        if kubectl:
            first = sorted((repo / "out0").iterdir())
            run_dirs = [p for p in first if p.is_dir()]
            for count in (1, 10, 100):
                target = repo / f"kz{count}"
                target.mkdir()
                (target / "kustomization.yaml").write_text(
                    "resources:\n"
                    + "".join(
                        f"- ../out0/{d.name}/{step.name}/manifests.yaml\n"
                        for d in run_dirs[:count]
                        for step in sorted(d.iterdir())
                        if step.is_dir() and step.name != "flux"
                    )
                )
                kustomize[str(count)] = timed(
                    lambda t=target: subprocess.run(  # type: ignore[misc]
                        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(t)],
                        check=True,
                        capture_output=True,
                    ),
                    max(1, args.repeat // 2),
                )

    n_obj = len(objects)
    med = statistics.median
    print(f"runs: {args.runs}, objects: {n_obj} (+ flux wiring), repeats: {args.repeat}")
    print(
        f"render all (process, cold)   {stats(render_times)} s  "
        f"-> {n_obj / med(render_times):,.0f} objects/s  [target < {TARGETS['render_all_s']} s]"
    )
    print(
        f"validate all (process)       {stats(validate_times)} s  "
        f"[target < {TARGETS['validate_all_s']} s]"
    )
    print(
        f"peak RSS, render all         {report['rss_mib']:.0f} MiB largest process, "
        f"{report['tree_rss_mib']:.0f} MiB PSS of all processes  "
        f"[target < {TARGETS['peak_rss_mib']} MiB]"
    )
    print(
        f"compile (in-process)         {stats(compile_times)} s  "
        f"-> {med(compile_times) / args.runs * 1e3:.2f} ms/run"
    )
    print(
        f"serialize, our emitter       {stats(emit_times)} s  "
        f"-> {n_obj / med(emit_times):,.0f} objects/s"
    )
    print(
        f"serialize, json.dumps        {stats(json_times)} s  "
        f"-> {n_obj / med(json_times):,.0f} objects/s"
    )
    print(f"serialize, PyYAML C dumper   {len(sample) / med(c_dump):,.0f} objects/s")
    print(f"serialize, PyYAML pure       {len(sample) / med(py_dump):,.0f} objects/s")
    ratio = (med(compile_times) + med(emit_times)) / med(json_times)
    print(f"compile+emit vs json.dumps   {ratio:.1f}x  [target within {TARGETS['json_ratio']}x]")
    print(
        f"cold validate, one spec      {stats(cold_validate)} s  "
        f"({med(cold_validate) / med(bare):.1f}x bare)  [target < {TARGETS['cold_start_s']} s, "
        f"{TARGETS['cold_start_ratio']}x]"
    )
    print(
        f"cold render, one run         {stats(cold_render)} s  "
        f"({med(cold_render) / med(bare):.1f}x bare)"
    )
    print(f"python -c 'import pydantic, yaml'  {stats(bare)} s")
    for label, values in kustomize.items():
        print(f"kubectl kustomize, {label:>3} run(s)  {stats(values)} s")
    print(
        f"(ru_maxrss of this benchmark process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
