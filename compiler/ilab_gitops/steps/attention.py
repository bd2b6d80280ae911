"""Flash attention, decided on purpose before instructlab-training decides it by itself.

instructlab-training 0.16.2 turns flash attention on for compute capability 8.x and 9.0 and
then imports `flash_attn`; on other GPUs it raises "unsupported hardware" unless
`disable_flash_attn` is set. A train image without flash-attn (a source-only release that
needs nvcc to build) therefore failed on every A100/H100/H200 with an ImportError. Here the
spec's `training.flashAttention` (auto|on|off) and what this pod can do give one decision,
logged and written into the step's done marker; `on` that cannot be honoured is a one-line
error before any GPU work, never an ImportError.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Literal

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

FlashMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class FlashDecision:
    """Whether training uses flash attention, and why (for the log and the marker)."""

    mode: FlashMode
    use: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "used": self.use, "reason": self.reason}


def trainer_supports(capability: tuple[int, int]) -> bool:
    """Compute capabilities where instructlab-training 0.16.2 accepts flash attention:
    8.x (A100, A10, L4, L40) and 9.0 (H100, H200). Later ones (10.x, 12.x) it refuses."""
    major, minor = capability
    return major == 8 or (major, minor) == (9, 0)


def decide(
    mode: FlashMode, capability: tuple[int, int] | None, import_error: str | None
) -> FlashDecision:
    """The decision from the spec's mode, the GPU's capability (None: no GPU) and the
    result of importing flash_attn (None: it imported)."""
    if mode == "off":
        return FlashDecision(mode, False, "training.flashAttention is off")
    problems = []
    if capability is None:
        problems.append("no CUDA device")
    elif not trainer_supports(capability):
        problems.append(
            f"GPU compute capability {capability[0]}.{capability[1]} is not one "
            "instructlab-training runs flash attention on (8.x, 9.0)"
        )
    if import_error is not None:
        problems.append(f"flash_attn does not import ({import_error})")
    if not problems:
        cap = f"{capability[0]}.{capability[1]}" if capability else "?"
        return FlashDecision(mode, True, f"flash_attn imports and compute capability {cap}")
    reason = "; ".join(problems)
    if mode == "on":
        raise StepError(f"training.flashAttention is on but {reason}")
    return FlashDecision(mode, False, reason)


def probe_import() -> str | None:
    """None when flash_attn imports, else why not (one line)."""
    try:
        importlib.import_module("flash_attn")
    except Exception as exc:  # ImportError, or OSError / undefined symbols of a bad build
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return None


def probe_capability() -> tuple[int, int] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return int(major), int(minor)


def decide_here(mode: FlashMode) -> FlashDecision:
    """Probe this pod (import only when the mode asks for flash attention) and decide."""
    if mode == "off":
        decision = decide(mode, None, None)
    else:
        decision = decide(mode, probe_capability(), probe_import())
    if decision.use:
        log.info("flash attention: on (%s)", decision.reason)
    else:
        log.warning("flash attention: off (%s); training without it", decision.reason)
    return decision
