"""Tokenize the SDG messages for both training phases with instructlab-training.

`instructlab.training.data_process.process_data` with `chat_tmpl_path=None` uses the
model's own chat template (the library's current path; the legacy template files are
deprecated). It writes `<output>/data.jsonl`, which `run_training(process_data=False)`
reads from `data_output_dir`. The input names follow `ilab data generate`:
`knowledge_train_msgs_<date>.jsonl` (phase 1) and `skills_train_msgs_<date>.jsonl` (phase 2).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

PHASES = {"knowledge": "knowledge_train_msgs*.jsonl", "skills": "skills_train_msgs*.jsonl"}


def phase_inputs(data_dir: Path) -> dict[str, list[Path]]:
    found = {phase: sorted(data_dir.glob(pattern)) for phase, pattern in PHASES.items()}
    missing = [PHASES[phase] for phase, files in found.items() if not files]
    if missing:
        raise StepError(
            f"SDG data folder {data_dir.name}/ has no {' and no '.join(missing)} "
            "(the files `ilab data generate` writes)"
        )
    return found


def default_procs() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 16))


def process_phase(
    data_dir: Path, phase: str, output: Path, *, model: Path, max_seq_len: int, procs: int
) -> int:
    """Run the library's data processing; returns the number of samples kept.

    The glob goes to `datasets.load_dataset` as is (as ilab-on-ocp passes it), so several
    files of one phase are concatenated in name order.
    """
    from instructlab.training.data_process import process_data

    output.mkdir(parents=True, exist_ok=True)
    data_path = str(data_dir / PHASES[phase])
    try:
        process_data(
            data_path=data_path,
            data_output_path=str(output),
            max_seq_len=max_seq_len,
            model_path=str(model),
            num_cpu_procs=procs,
            chat_tmpl_path=None,
        )
    except (ValueError, RuntimeError) as exc:
        raise StepError(f"data processing of {data_path} failed: {exc}") from None
    result = output / "data.jsonl"
    if not result.is_file():
        raise StepError(f"data processing wrote no {result}")
    with result.open("rb") as handle:
        samples = sum(1 for _ in handle)
    log.info("%s: %d samples within max_seq_len=%d", output.name, samples, max_seq_len)
    return samples
