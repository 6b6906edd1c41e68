"""Checkpoint averaging: the mean of several checkpoints' weights, one file at a time.

Averaging the last few periodic checkpoints of one run usually gives a slightly
better model for free. Floating-point tensors are averaged; integer buffers, the
model spec, the tokenizers and the config come from the first checkpoint;
optimizer, scheduler and RNG state are dropped (the result is for translation,
not for resuming).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seq2seq.checkpoint import CheckpointError, load_checkpoint
from seq2seq.training.checkpointing import step_checkpoints

log = logging.getLogger(__name__)

TRAINING_ONLY = ("optimizer", "scheduler", "rng")


def _check_same_parameters(
    reference: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], first: Path, path: Path
) -> None:
    """Same parameter names and shapes as the first checkpoint, or an error naming the file."""
    missing = sorted(set(reference) - set(weights))
    extra = sorted(set(weights) - set(reference))
    if missing or extra:
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"unexpected {', '.join(extra[:5])}" if extra else "",
            )
            if part
        )
        raise CheckpointError(
            f"cannot average {path} with {first}: different parameters ({detail}). "
            "Only checkpoints of the same model architecture can be averaged."
        )
    for name, tensor in reference.items():
        if weights[name].shape != tensor.shape:
            raise CheckpointError(
                f"cannot average {path} with {first}: parameter {name} has shape "
                f"{tuple(weights[name].shape)} there but {tuple(tensor.shape)} in {first}."
            )


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The payload of the averaged model (checkpoints are loaded one at a time)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("nothing to average: no checkpoint given")
    first = load_checkpoint(paths[0])
    reference = first["model"]
    sums = {
        name: tensor.double() for name, tensor in reference.items() if tensor.is_floating_point()
    }
    for path in paths[1:]:
        weights = load_checkpoint(path)["model"]
        _check_same_parameters(reference, weights, paths[0], path)
        for name, total in sums.items():
            total += weights[name].double()
    averaged = {
        name: (sums[name] / len(paths)).to(tensor.dtype) if name in sums else tensor
        for name, tensor in reference.items()
    }
    payload = {key: value for key, value in first.items() if key not in TRAINING_ONLY}
    payload.pop("format", None)  # save_checkpoint writes it
    payload["model"] = averaged
    payload["averaged_from"] = [str(p) for p in paths]
    return payload


def newest_step_checkpoints(run_dir: str | Path, last: int) -> list[Path]:
    """The `last` newest checkpoints/step_N.pt of a run directory, newest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    found = step_checkpoints(ckpt_dir)
    if len(found) < last:
        raise CheckpointError(
            f"--last {last}: {ckpt_dir} holds only {len(found)} periodic checkpoint(s) "
            "(step_N.pt). Use a smaller --last, or train with trainer.keep_last >= "
            f"{last} to keep more."
        )
    return found[:last]
