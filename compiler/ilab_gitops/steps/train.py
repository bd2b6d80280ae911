"""train: one phase of instructlab-training, run by every pod of a PyTorchJob.

Distributed settings come from what the Kubeflow training operator sets in each pod
(MASTER_ADDR, MASTER_PORT, PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE; RANK and
WORLD_SIZE as fallbacks) and are checked against the compiled params, so a manifest edited
by hand cannot silently train with a different topology. `run_training` starts torchrun.

Checkpoints go to `<outputPath>/checkpoints` in place (not staged): a re-created pod must
find the full-state checkpoints of its predecessor, which instructlab-training resumes from
on its own. Only the master pod (node rank 0) writes the done marker.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ilab_gitops.steps.attention import FlashDecision, FlashMode, decide_here
from ilab_gitops.steps.checkpoints import (
    FullStatePruner,
    hf_checkpoints,
    quarantine_incomplete_full_state,
    resolve_model_path,
)
from ilab_gitops.steps.digests import tree_sha256
from ilab_gitops.steps.markers import done_marker, write_marker
from ilab_gitops.steps.runtime import StepError, StepParams, run_step

log = logging.getLogger(__name__)


class CpuOffload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: bool
    params: bool


class TrainParams(StepParams):
    backend: Literal["fsdp", "deepspeed"]
    cpuOffload: CpuOffload
    flashAttention: FlashMode
    fullState: Literal["none", "last", "everyEpoch"]
    nnodes: int
    nprocPerNode: int
    maxSeqLen: int
    maxBatchLen: int
    seed: int
    saveSamples: int
    checkpointAtEpoch: bool
    epochs: int
    effectiveBatchSize: int
    learningRate: float
    warmupSteps: int
    modelPath: str
    dataPath: str

    @property
    def checkpoints(self) -> Path:
        return self.output / "checkpoints"


class Topology(BaseModel):
    """Where this pod stands in the job, as the training operator told it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nnodes: int
    node_rank: int
    nproc_per_node: int | Literal["gpu"]
    master_addr: str | None = None
    master_port: int | None = None


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    head, _, tail = value.partition(":")  # elastic form "min:max"
    if tail and tail != head:
        raise StepError(f"{name}={value}: elastic node ranges are not supported")
    try:
        return int(head)
    except ValueError:
        raise StepError(f"{name}={value}: expected an integer") from None


def topology(params: TrainParams, env: Mapping[str, str]) -> Topology:
    nnodes = _int_env(env, "PET_NNODES") or params.nnodes
    rank = _int_env(env, "PET_NODE_RANK")
    node_rank = rank if rank is not None else (_int_env(env, "RANK") or 0)
    nproc_raw = env.get("PET_NPROC_PER_NODE", "")
    nproc: int | Literal["gpu"]
    if nproc_raw in ("gpu", "auto"):
        nproc = "gpu"
    else:
        nproc = _int_env(env, "PET_NPROC_PER_NODE") or params.nprocPerNode
    if nnodes != params.nnodes:
        raise StepError(f"PET_NNODES={nnodes} but the run was compiled for nnodes={params.nnodes}")
    if isinstance(nproc, int) and nproc != params.nprocPerNode:
        raise StepError(
            f"PET_NPROC_PER_NODE={nproc} but the run was compiled for "
            f"nprocPerNode={params.nprocPerNode}"
        )
    if not 0 <= node_rank < nnodes:
        raise StepError(f"node rank {node_rank} is outside 0..{nnodes - 1}")
    master_addr = env.get("MASTER_ADDR") or env.get("PET_MASTER_ADDR") or None
    port = _int_env(env, "MASTER_PORT") or _int_env(env, "PET_MASTER_PORT")
    if nnodes > 1 and master_addr is None:
        raise StepError("MASTER_ADDR is not set: multi-node training needs the operator's env")
    return Topology(
        nnodes=nnodes,
        node_rank=node_rank,
        nproc_per_node=nproc,
        master_addr=master_addr,
        master_port=port if master_addr else None,
    )


def torchrun_kwargs(params: TrainParams, topo: Topology) -> dict[str, Any]:
    """Keyword arguments for instructlab-training's `TorchrunArgs`."""
    kwargs: dict[str, Any] = {
        "nnodes": topo.nnodes,
        "node_rank": topo.node_rank,
        "nproc_per_node": topo.nproc_per_node,
        "rdzv_id": params.stepName,
    }
    if topo.master_addr is not None:
        kwargs["master_addr"] = topo.master_addr
        kwargs["master_port"] = topo.master_port
    return kwargs


def training_kwargs(params: TrainParams, model_path: Path, flash: FlashDecision) -> dict[str, Any]:
    """Keyword arguments for `TrainingArgs`; enums are passed by value and parsed there."""
    full_state = params.fullState != "none"
    return {
        "model_path": str(model_path),
        # prepare already tokenized the data: run_training reads <data_output_dir>/data.jsonl.
        "data_path": f"{params.dataPath}/data.jsonl",
        "data_output_dir": params.dataPath,
        "process_data": False,
        "ckpt_output_dir": str(params.checkpoints),
        "max_seq_len": params.maxSeqLen,
        "max_batch_len": params.maxBatchLen,
        "num_epochs": params.epochs,
        "effective_batch_size": params.effectiveBatchSize,
        "save_samples": params.saveSamples,
        "learning_rate": params.learningRate,
        "warmup_steps": params.warmupSteps,
        "random_seed": params.seed,
        "checkpoint_at_epoch": params.checkpointAtEpoch,
        # Full state at each epoch is what a re-created pod resumes from; on-demand saves a
        # full state when the pod is told to stop (preemption, eviction). With fullState
        # none neither is written and a restarted phase starts over; with last, the step
        # deletes older ones (checkpoints.FullStatePruner).
        "accelerate_full_state_at_epoch": full_state,
        "on_demand_checkpointing": full_state,
        # Decided here (attention.py), never left to instructlab-training's own probe.
        "disable_flash_attn": not flash.use,
        # Evaluation picks among all phase-2 checkpoints, so none may be overwritten.
        "keep_last_checkpoint_only": False,
        "distributed_backend": params.backend,
        "fsdp_options": {"cpu_offload_params": params.cpuOffload.params},
        "deepspeed_options": {"cpu_offload_optimizer": params.cpuOffload.optimizer},
    }


def build_args(
    params: TrainParams, env: Mapping[str, str], model_path: Path, flash: FlashDecision
) -> tuple[Any, Any, Topology]:
    from instructlab.training import TorchrunArgs, TrainingArgs

    topo = topology(params, env)
    return (
        TorchrunArgs(**torchrun_kwargs(params, topo)),
        TrainingArgs(**training_kwargs(params, model_path, flash)),
        topo,
    )


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def train(params: TrainParams) -> None:
    if not _cuda_available():
        raise StepError(
            "no CUDA device in this pod: instructlab-training needs GPUs "
            "(the environment's gpu.perNode is 0 or the node has no driver)"
        )
    model_path = resolve_model_path(Path(params.modelPath))
    data = Path(params.dataPath) / "data.jsonl"
    if not data.is_file():
        raise StepError(f"{data} not found: did the prepare step finish?")
    flash = decide_here(params.flashAttention)
    torch_args, train_args, topo = build_args(params, os.environ, model_path, flash)
    params.checkpoints.mkdir(parents=True, exist_ok=True)
    if topo.node_rank == 0:
        quarantine_incomplete_full_state(params.checkpoints)

    from instructlab.training import run_training

    from ilab_gitops.steps.progress import METRICS_FILE, MetricsTail
    from ilab_gitops.steps.progress_status import reporter_from_env

    # Rank 0 writes the metrics; its pod publishes the progress (file, log line and, with
    # commitStatusProgress, the commit status).
    tail: contextlib.AbstractContextManager[object] = (
        MetricsTail(
            params.checkpoints / METRICS_FILE,
            params.output,
            params.step,
            params.epochs,
            reporter=reporter_from_env(params.stepName),
        )
        if topo.node_rank == 0
        else contextlib.nullcontext()
    )
    with tail:
        if topo.node_rank == 0 and params.fullState == "last":
            with FullStatePruner(params.checkpoints) as pruner:
                run_training(torch_args=torch_args, train_args=train_args)
            pruned = len(pruner.removed)
        else:
            run_training(torch_args=torch_args, train_args=train_args)
            pruned = 0
    if topo.node_rank != 0:
        return
    hf_format = params.checkpoints / "hf_format"
    saved = hf_checkpoints(hf_format)
    if not saved:
        raise StepError(f"training finished but wrote no samples_N checkpoint in {hf_format}")
    marker = done_marker(
        params,
        files={f"checkpoints/hf_format/{k}": v for k, v in tree_sha256(hf_format).items()},
        details={
            "baseModel": str(model_path),
            "checkpoints": [{"name": c.name, "samples": c.samples} for c in saved],
            "nnodes": topo.nnodes,
            "nprocPerNode": topo.nproc_per_node,
            "flashAttention": flash.as_dict(),
            "fullState": {"policy": params.fullState, "pruned": pruned},
        },
    )
    write_marker(params.output, marker)


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(argv, TrainParams, train, description=__doc__ or "train")


if __name__ == "__main__":
    raise SystemExit(main())
