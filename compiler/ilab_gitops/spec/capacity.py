"""What a run's checkpoints need on the workspace volume, estimated before anything runs.

A 7B model's full training state is ~84 GB; kept every epoch for 17 epochs it outgrows any
reasonable PVC hours into a run. The estimate is deliberately simple and documented, so a
reader can redo it by hand: per parameter, a full state holds fp32 weights plus AdamW's two
fp32 moments (12 bytes), a Hugging Face checkpoint bf16 weights (2 bytes). Checkpoints saved
every `saveSamples` depend on the data size, unknown here, so the estimate is a lower bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ilab_gitops.spec.pipeline_run import Training

FULL_STATE_BYTES_PER_PARAM = 12
HF_BYTES_PER_PARAM = 2

_UNITS: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_PARAMS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([MB])$")


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity (the spec's `Quantity` pattern) in bytes."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    return int(Decimal(match.group(1)) * _UNITS[match.group(2) or ""])


def parameter_count(text: str) -> int:
    """`8B` -> 8_000_000_000, `350M` -> 350_000_000."""
    match = _PARAMS.match(text)
    if match is None:
        raise ValueError(f"not a parameter count: {text!r}")
    return int(Decimal(match.group(1)) * (10**9 if match.group(2) == "B" else 10**6))


def human_bytes(size: int) -> str:
    """Binary units with one decimal, as storage sizes are usually written (`1.5 TiB`)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DiskEstimate:
    """The bytes a run's model files need at their peak, and how they add up."""

    parameters: int
    full_states: int  # full states on disk at the peak, both phases together
    hf_checkpoints: int  # per-epoch Hugging Face checkpoints, both phases together

    @property
    def full_state_bytes(self) -> int:
        return self.parameters * FULL_STATE_BYTES_PER_PARAM

    @property
    def hf_bytes(self) -> int:
        return self.parameters * HF_BYTES_PER_PARAM

    @property
    def total(self) -> int:
        # + 1 Hugging Face sized copy: the base model that prepare stores on the volume.
        return self.full_states * self.full_state_bytes + (self.hf_checkpoints + 1) * self.hf_bytes

    def explain(self) -> str:
        return (
            f"{self.full_states} full state(s) x {human_bytes(self.full_state_bytes)} + "
            f"{self.hf_checkpoints + 1} model copies x {human_bytes(self.hf_bytes)} "
            "(base model and per-epoch checkpoints)"
        )


def full_states_kept(policy: str, epochs: int) -> int:
    """Full states one phase holds at its peak: `last` briefly holds two (the new one is
    complete before the old one is deleted)."""
    if policy == "none":
        return 0
    if policy == "last":
        return min(2, epochs)
    return epochs


def estimate(training: Training) -> DiskEstimate | None:
    """The estimate, or None when the spec does not say how large the model is."""
    if training.modelParameters is None:
        return None
    phases = (training.knowledge, training.skills)
    policy = training.checkpoints.fullState
    return DiskEstimate(
        parameters=parameter_count(training.modelParameters),
        full_states=sum(full_states_kept(policy, p.epochs) for p in phases),
        hf_checkpoints=sum(p.epochs for p in phases) if training.checkpointAtEpoch else 0,
    )
