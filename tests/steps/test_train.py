"""train: operator env + params -> instructlab-training args; checkpoint choice; resume."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ilab_gitops.steps import attention, train
from ilab_gitops.steps.attention import FlashDecision
from ilab_gitops.steps.checkpoints import (
    FullStatePruner,
    hf_checkpoints,
    prune_full_states,
    quarantine_incomplete_full_state,
    resolve_model_path,
)
from ilab_gitops.steps.runtime import StepError
from tests.steps.builders import base_params, write_params


def params(tmp_path: Path, **over: Any) -> train.TrainParams:
    raw = base_params(
        tmp_path,
        "train-phase-1",
        backend="fsdp",
        cpuOffload={"optimizer": False, "params": True},
        flashAttention="auto",
        fullState="last",
        nnodes=2,
        nprocPerNode=4,
        maxSeqLen=4096,
        maxBatchLen=20000,
        seed=42,
        saveSamples=250000,
        checkpointAtEpoch=True,
        epochs=7,
        effectiveBatchSize=128,
        learningRate=2e-5,
        warmupSteps=1000,
        modelPath=str(tmp_path / "prepare" / "model"),
        dataPath=str(tmp_path / "prepare" / "processed" / "knowledge"),
    )
    raw.update(over)
    return train.TrainParams.model_validate(raw)


FLASH_ON = FlashDecision("auto", True, "flash_attn imports and compute capability 9.0")
FLASH_OFF = FlashDecision("auto", False, "flash_attn does not import")

# What the Kubeflow training operator sets in a worker pod of a 2-node PyTorchJob.
WORKER_ENV = {
    "MASTER_ADDR": "r1-train-phase-1-0123abcd-master-0",
    "MASTER_PORT": "23456",
    "WORLD_SIZE": "8",
    "RANK": "1",
    "PET_NNODES": "2",
    "PET_NODE_RANK": "1",
    "PET_NPROC_PER_NODE": "4",
    "PET_MASTER_ADDR": "r1-train-phase-1-0123abcd-master-0",
    "PET_MASTER_PORT": "23456",
}


def test_worker_env_maps_to_torchrun_args(tmp_path: Path) -> None:
    p = params(tmp_path)
    torch_args, train_args, topo = train.build_args(p, WORKER_ENV, Path("/m"), FLASH_ON)
    assert topo.node_rank == 1
    assert torch_args.model_dump() == {
        "nproc_per_node": 4,
        "nnodes": 2,
        "node_rank": 1,
        "rdzv_id": "r1-train-phase-1-0123abcd",
        "rdzv_endpoint": None,
        "master_addr": "r1-train-phase-1-0123abcd-master-0",
        "master_port": 23456,
    }
    assert train_args.model_path == "/m"
    assert train_args.data_output_dir == p.dataPath
    assert train_args.process_data is False
    assert train_args.ckpt_output_dir == f"{p.outputPath}/checkpoints"
    assert (train_args.num_epochs, train_args.effective_batch_size) == (7, 128)
    assert (train_args.learning_rate, train_args.warmup_steps) == (2e-5, 1000)
    assert (train_args.max_seq_len, train_args.max_batch_len) == (4096, 20000)
    assert (train_args.save_samples, train_args.random_seed) == (250000, 42)
    assert train_args.distributed_backend.value == "fsdp"
    assert train_args.fsdp_options.cpu_offload_params is True
    assert train_args.deepspeed_options.cpu_offload_optimizer is False
    assert train_args.accelerate_full_state_at_epoch is True
    assert train_args.on_demand_checkpointing is True
    assert train_args.keep_last_checkpoint_only is False
    assert train_args.disable_flash_attn is False


# What Kubeflow Trainer v2's torch plugin sets in the second node of a 2-node TrainJob: only
# PET_* (no MASTER_ADDR, RANK or WORLD_SIZE); the master is the first node's pod DNS name.
TRAINJOB_NODE_ENV = {
    "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "4",
    "PET_NODE_RANK": "1",
    "PET_MASTER_ADDR": "r1-train-phase-1-0123abcd-node-0-0.r1-train-phase-1-0123abcd",
    "PET_MASTER_PORT": "29400",
}


def test_trainjob_env_maps_to_the_same_torchrun_args(tmp_path: Path) -> None:
    torch_args, _, topo = train.build_args(
        params(tmp_path), TRAINJOB_NODE_ENV, Path("/m"), FLASH_ON
    )
    assert topo.node_rank == 1
    assert torch_args.model_dump() == {
        "nproc_per_node": 4,
        "nnodes": 2,
        "node_rank": 1,
        "rdzv_id": "r1-train-phase-1-0123abcd",
        "rdzv_endpoint": None,
        "master_addr": "r1-train-phase-1-0123abcd-node-0-0.r1-train-phase-1-0123abcd",
        "master_port": 29400,
    }


def test_rank_falls_back_to_RANK_and_single_node_is_standalone(tmp_path: Path) -> None:
    env = {k: v for k, v in WORKER_ENV.items() if k != "PET_NODE_RANK"}
    assert train.topology(params(tmp_path), env).node_rank == 1
    single = params(
        tmp_path,
        nnodes=1,
        nprocPerNode=1,
        backend="deepspeed",
        cpuOffload={"optimizer": True, "params": False},
    )
    torch_args, train_args, topo = train.build_args(single, {}, Path("/m"), FLASH_OFF)
    assert topo.node_rank == 0
    assert torch_args.master_addr is None and torch_args.rdzv_endpoint is None
    assert train_args.distributed_backend.value == "deepspeed"
    assert train_args.deepspeed_options.cpu_offload_optimizer is True
    assert train_args.disable_flash_attn is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**WORKER_ENV, "PET_NNODES": "3"}, "PET_NNODES=3 but the run was compiled for nnodes=2"),
        ({**WORKER_ENV, "PET_NNODES": "1:4"}, "elastic node ranges are not supported"),
        ({**WORKER_ENV, "PET_NPROC_PER_NODE": "8"}, "compiled for nprocPerNode=4"),
        ({**WORKER_ENV, "PET_NODE_RANK": "2"}, "node rank 2 is outside 0..1"),
        ({"PET_NNODES": "2", "PET_NODE_RANK": "0"}, "MASTER_ADDR is not set"),
        ({**WORKER_ENV, "MASTER_PORT": "x"}, "MASTER_PORT=x: expected an integer"),
    ],
)
def test_topology_mismatch_is_an_error(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(StepError, match=message):
        train.topology(params(tmp_path), env)


@pytest.mark.parametrize(
    ("policy", "full_state"), [("none", False), ("last", True), ("everyEpoch", True)]
)
def test_full_state_policy_maps_to_training_args(
    tmp_path: Path, policy: str, full_state: bool
) -> None:
    p = params(tmp_path, fullState=policy, nnodes=1)
    _, train_args, _ = train.build_args(p, {}, Path("/m"), FLASH_OFF)
    assert train_args.accelerate_full_state_at_epoch is full_state
    assert train_args.on_demand_checkpointing is full_state
    assert train_args.checkpoint_at_epoch is True  # Hugging Face checkpoints are separate


@pytest.mark.parametrize(
    ("mode", "capability", "import_error", "use", "reason"),
    [
        ("auto", (9, 0), None, True, "flash_attn imports and compute capability 9.0"),
        ("auto", (8, 6), None, True, "flash_attn imports and compute capability 8.6"),
        ("on", (8, 0), None, True, "flash_attn imports and compute capability 8.0"),
        (
            "auto",
            (9, 0),
            "ModuleNotFoundError: No module named 'flash_attn'",
            False,
            "flash_attn does not import (ModuleNotFoundError: No module named 'flash_attn')",
        ),
        (
            "auto",
            (7, 5),
            None,
            False,
            "GPU compute capability 7.5 is not one instructlab-training runs flash attention "
            "on (8.x, 9.0)",
        ),
        (
            "auto",
            (10, 0),
            None,
            False,
            "GPU compute capability 10.0 is not one instructlab-training runs flash attention "
            "on (8.x, 9.0)",
        ),
        (
            "auto",
            None,
            "ImportError: x",
            False,
            "no CUDA device; flash_attn does not import (ImportError: x)",
        ),
        ("off", (9, 0), None, False, "training.flashAttention is off"),
    ],
)
def test_flash_attention_decision(
    mode: attention.FlashMode,
    capability: tuple[int, int] | None,
    import_error: str | None,
    use: bool,
    reason: str,
) -> None:
    decision = attention.decide(mode, capability, import_error)
    assert decision == FlashDecision(mode, use, reason)
    assert decision.as_dict() == {"mode": mode, "used": use, "reason": reason}


@pytest.mark.parametrize(
    ("capability", "import_error", "message"),
    [
        (
            (9, 0),
            "ModuleNotFoundError: No module named 'flash_attn'",
            "training.flashAttention is on but flash_attn does not import "
            "(ModuleNotFoundError: No module named 'flash_attn')",
        ),
        (
            (7, 0),
            None,
            "training.flashAttention is on but GPU compute capability 7.0 is not one "
            "instructlab-training runs flash attention on (8.x, 9.0)",
        ),
    ],
)
def test_flash_attention_on_fails_fast_when_it_cannot(
    capability: tuple[int, int], import_error: str | None, message: str
) -> None:
    with pytest.raises(StepError) as caught:
        attention.decide("on", capability, import_error)
    assert str(caught.value) == message


def test_flash_attention_import_probe_reports_the_real_import() -> None:
    # The step image for CPU tests has no flash_attn: the probe says so in one line.
    pytest.importorskip("torch")
    try:
        __import__("flash_attn")
    except ImportError:
        assert attention.probe_import() == "ModuleNotFoundError: No module named 'flash_attn'"
    else:  # pragma: no cover - an image with flash-attn
        assert attention.probe_import() is None


def test_flash_attention_on_without_gpu_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = params(tmp_path, flashAttention="on", nnodes=1).model_dump()
    path = write_params(tmp_path / "p.json", raw)
    # Past the CUDA check, as on a GPU without flash_attn: the decision fails first.
    monkeypatch.setattr(attention, "probe_capability", lambda: (9, 0))
    monkeypatch.setattr(attention, "probe_import", lambda: "ModuleNotFoundError: x")
    monkeypatch.setattr(train, "_cuda_available", lambda: True)
    model = Path(raw["modelPath"])
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    data = Path(raw["dataPath"])
    data.mkdir(parents=True)
    (data / "data.jsonl").write_text("{}\n")
    assert train.main(["--params", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "error: training.flashAttention is on but flash_attn does not import "
        "(ModuleNotFoundError: x)"
    )
    assert not (tmp_path / "train-phase-1" / "checkpoints").exists()


def full_state(ckpt: Path, epoch: int, *, complete: bool) -> Path:
    folder = ckpt / "full_state" / f"epoch_{epoch}"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"state")
    if complete:
        (folder / "training_metadata.json").write_bytes(b"meta")
    return folder


def test_prune_keeps_newest_complete_and_the_one_being_written(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    for epoch, complete in ((0, True), (1, True), (2, True), (3, False)):
        full_state(ckpt, epoch, complete=complete)
    (ckpt / "full_state" / "notes").mkdir()  # not the trainer's: left alone
    removed = prune_full_states(ckpt)
    assert sorted(p.name for p in removed) == ["epoch_0", "epoch_1"]
    assert sorted(p.name for p in (ckpt / "full_state").iterdir()) == [
        "epoch_2",
        "epoch_3",
        "notes",
    ]
    assert prune_full_states(ckpt) == []  # a second pass changes nothing
    assert prune_full_states(tmp_path / "nothing") == []


def test_prune_never_deletes_when_nothing_is_complete(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    full_state(ckpt, 0, complete=False)
    assert prune_full_states(ckpt) == []
    assert (ckpt / "full_state" / "epoch_0").is_dir()


def test_pruner_sweeps_when_training_ends(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    with FullStatePruner(ckpt, interval_s=3600) as pruner:
        for epoch in range(3):  # what training writes while the pruner waits
            full_state(ckpt, epoch, complete=True)
    assert [p.name for p in pruner.removed] == ["epoch_0", "epoch_1"]
    assert [p.name for p in (ckpt / "full_state").iterdir()] == ["epoch_2"]


def fake_checkpoint(path: Path, *, weights: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if weights:
        (path / "model.safetensors").write_bytes(b"w")
    return path


def test_phase2_model_is_highest_samples_by_number_not_mtime(tmp_path: Path) -> None:
    hf = tmp_path / "hf_format"
    # Created in an order where mtime and string order both disagree with N.
    fake_checkpoint(hf / "samples_900000")
    fake_checkpoint(hf / "samples_1250000")
    fake_checkpoint(hf / "samples_250000")
    fake_checkpoint(hf / "samples_2000000", weights=False)  # half-written: ignored
    (hf / "last_epoch").mkdir()
    (hf / "notes.txt").write_text("x")
    assert [c.samples for c in hf_checkpoints(hf)] == [250000, 900000, 1250000]
    assert resolve_model_path(hf) == hf / "samples_1250000"
    assert resolve_model_path(hf / "samples_250000") == hf / "samples_250000"
    with pytest.raises(StepError, match="neither a model folder nor holds samples_N"):
        resolve_model_path(tmp_path / "empty")


def test_incomplete_full_state_is_moved_aside(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    for epoch, complete in ((0, True), (1, True), (2, False)):
        folder = ckpt / "full_state" / f"epoch_{epoch}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "training_metadata.json").write_bytes(b"meta")
    moved = quarantine_incomplete_full_state(ckpt)
    assert [p.name.split("-")[0] for p in moved] == ["epoch_2"]
    assert sorted(p.name for p in (ckpt / "full_state").iterdir()) == ["epoch_0", "epoch_1"]


def test_without_cuda_the_step_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    raw = params(tmp_path).model_dump()
    path = write_params(tmp_path / "p.json", raw)
    assert train.main(["--params", str(path)]) == 2
    assert "no CUDA device in this pod" in capsys.readouterr().err


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_tiny_model_trains_and_writes_samples_checkpoints(
    tmp_path: Path, tiny_model: Path
) -> None:  # pragma: no cover - runs only where a GPU is
    from instructlab.training.data_process import process_data

    from tests.steps.builders import sdg_jsonl

    data_dir = tmp_path / "prepare" / "data"
    data_dir.mkdir(parents=True)
    (data_dir / "knowledge_train_msgs_x.jsonl").write_bytes(sdg_jsonl(64, "k"))
    processed = tmp_path / "prepare" / "processed" / "knowledge"
    process_data(
        data_path=str(data_dir / "knowledge_train_msgs_x.jsonl"),
        data_output_path=str(processed),
        max_seq_len=256,
        model_path=str(tiny_model),
        num_cpu_procs=1,
    )
    model = tmp_path / "prepare" / "model"
    shutil.copytree(tiny_model, model)
    p = params(
        tmp_path,
        nnodes=1,
        nprocPerNode=1,
        epochs=1,
        effectiveBatchSize=8,
        saveSamples=16,
        maxSeqLen=256,
        maxBatchLen=2048,
        warmupSteps=0,
        learningRate=1e-3,
    )
    path = write_params(tmp_path / "p.json", p.model_dump())
    assert train.main(["--params", str(path)]) == 0
    names = [c.name for c in hf_checkpoints(p.checkpoints / "hf_format")]
    assert names and all(n.startswith("samples_") for n in names)
    assert (p.output / ".done.json").is_file()
