"""Which checkpoints a run writes, when, and which it keeps.

checkpoints/last.pt every trainer.checkpoint_every steps (and every
trainer.checkpoint_minutes of wall clock), step_{N}.pt beside it of which the newest
trainer.keep_last are kept, best.pt at every dev improvement, and at the end
averaged.pt from the final weights and the trainer.average_last - 1 newest step files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from seq2seq.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    save_checkpoint,
)
from seq2seq.training.distributed import DistContext

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, incompatible resume, …); the message says why."""


def check_same_model(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """A resume must build the model it saved; the error names the settings that differ."""
    if saved != current:
        changed = sorted(k for k in {*saved, *current} if saved.get(k) != current.get(k))
        raise TrainingError(
            f"cannot resume: the checkpoint's model differs from the config in {changed}. "
            "Resume with the original model settings, or start a new run."
        )


def checkpoint_step(path: Path) -> int | None:
    """N for a periodic checkpoint `step_{N}.pt`; None for any other file."""
    number = path.stem.removeprefix("step_")
    return int(number) if path.stem.startswith("step_") and number.isdigit() else None


def step_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The kept periodic checkpoints `step_{N}.pt`, newest (highest N) first."""
    found = [(checkpoint_step(path), path) for path in Path(ckpt_dir).glob("step_*.pt")]
    return [path for step, path in sorted(p for p in found if p[0] is not None)[::-1]]


def resume_candidates(resume: str) -> list[Path]:
    """A run directory: last.pt, then step_*.pt newest first. A file: that file only."""
    path = Path(resume)
    if not path.is_dir():
        return [path]
    ckpt_dir = path / "checkpoints"
    return [ckpt_dir / "last.pt", *step_checkpoints(ckpt_dir)]


def load_resume(resume: str | None, required: tuple[str, ...], hint: str) -> dict[str, Any] | None:
    """The checkpoint named by trainer.resume (falling back to older ones of a run
    directory when the newest is unreadable), or None; `required` keys must be in it."""
    if not resume:
        return None
    candidates = resume_candidates(resume)
    errors = []
    for path in candidates:
        try:
            payload = load_checkpoint(path)
            break
        except CheckpointError as exc:
            errors.append(str(exc))
            if len(candidates) > 1:
                log.warning("skipping unreadable checkpoint %s: %s", path, exc)
    else:
        raise TrainingError("cannot resume: " + "; ".join(errors))
    if errors:
        log.warning("falling back to %s (%s was unreadable)", path, candidates[0])
    if any(key not in payload for key in required):
        raise TrainingError(f"cannot resume from {path}: {hint}")
    log.info("resuming from %s at step %d", path, payload["progress"]["step"])
    return payload


class Checkpointer:
    """Writes a run's checkpoints (rank 0 only) by the policy of the module doc."""

    def __init__(self, run_dir: Path, tcfg: Any, dist: DistContext) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "checkpoints"
        self.every = tcfg.checkpoint_every or 0
        self.minutes = tcfg.checkpoint_minutes
        self.keep_last = tcfg.keep_last or 0
        self.average_last = tcfg.get("average_last") or 0  # only translation averages
        self.dist = dist
        self.last_periodic = time.monotonic()

    def save(
        self, name: str, model: torch.nn.Module, payload: Callable[[], dict[str, Any]], step: int
    ) -> None:
        """Atomic save; a model with NaN/Inf weights is never written.

        A write the OS refuses (a full disk above all) stops the run with a TrainingError
        naming the file and the reason, rather than training on with nowhere to save:
        the checkpoints already on disk are intact, so at most the steps since the last
        one are lost, and the message says how to resume once there is space.
        """
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            log.error("not writing %s: the model has NaN/Inf weights", name)
            return
        content = payload()  # on every process: it may gather their RNG states
        if not self.dist.is_main:
            return
        try:
            save_checkpoint(self.dir / name, content)
        except CheckpointWriteError as exc:
            raise TrainingError(
                f"{exc}. Training stopped at step {step}. Free some space "
                "(or lower trainer.keep_last), then resume from the newest good checkpoint "
                f"with trainer.resume={self.run_dir}"
            ) from exc

    def periodic_due(self, step: int) -> bool:
        """Every trainer.checkpoint_every steps, or trainer.checkpoint_minutes of wall clock."""
        if self.every and step % self.every == 0:
            return True
        return bool(self.minutes) and time.monotonic() - self.last_periodic >= self.minutes * 60

    def save_periodic(self, step: int, save: Callable[[str], None]) -> None:
        """last.pt, plus step_{N}.pt of which only the newest trainer.keep_last are kept."""
        self.last_periodic = time.monotonic()
        if self.keep_last > 0:
            save(f"step_{step}.pt")
            for old in step_checkpoints(self.dir)[self.keep_last :] if self.dist.is_main else []:
                old.unlink(missing_ok=True)
        save("last.pt")

    def to_average(self, final_step: int) -> list[Path]:
        """trainer.average_last=N: last.pt and the N-1 newest periodic checkpoints before
        it; empty when averaging is off, or nothing to average (with a warning)."""
        if self.average_last < 2 or not self.dist.is_main:
            return []
        earlier = [p for p in step_checkpoints(self.dir) if checkpoint_step(p) < final_step]
        if not earlier:
            log.warning(
                "trainer.average_last=%d: no periodic checkpoint to average", self.average_last
            )
            return []
        return [self.dir / "last.pt", *earlier[: self.average_last - 1]]

    def files(self) -> dict[str, Any]:
        """The checkpoints on disk now, for summary.json."""
        named = {name: self.dir / f"{name}.pt" for name in ("last", "best", "averaged")}
        found: dict[str, Any] = {k: str(p) if p.is_file() else None for k, p in named.items()}
        found["periodic"] = [str(p) for p in step_checkpoints(self.dir)]
        return found
