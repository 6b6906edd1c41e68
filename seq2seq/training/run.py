"""What every training loop shares: run folder, metrics log, budgets, signals, safe saves."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from seq2seq.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    save_checkpoint,
)
from seq2seq.config import validate
from seq2seq.training.distributed import DistContext

log = logging.getLogger(__name__)

MAX_BAD_STEPS = 5  # consecutive non-finite losses (or gradients) before giving up


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, incompatible resume, …); the message says why."""


def resolve_device(name: str) -> torch.device:
    """trainer.device as a torch device; a name torch does not know, or a GPU this
    machine lacks, is a ValueError saying what to use instead."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"trainer.device: unknown device {name!r}; use cpu, cuda, cuda:N or auto"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"trainer.device={name}, but torch sees no CUDA GPU on this machine "
                "(torch.cuda.is_available() is False); use trainer.device=cpu, or "
                "trainer.device=auto to use a GPU only where there is one"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"trainer.device={name}, but this machine has {count} CUDA GPU(s): "
                f"use cuda:0 … cuda:{count - 1}"
            )
    return device


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


def fused_adam_supported(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch has a fused Adam kernel for these parameters' devices and dtypes."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        devices = set(_get_fused_kernels_supported_devices())
    except ImportError:  # older torch: CUDA only
        devices = {"cuda"}
    return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)


def make_adam(parameters, lr: float, fused: bool = True) -> torch.optim.Adam:
    """Adam, with torch's fused kernel (one kernel for all parameters, several times faster
    than the per-tensor loop on CPU) when `fused` and the parameters' device supports it."""
    params = list(parameters)
    if fused and fused_adam_supported(params):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError) as exc:  # an unsupported combination
            log.warning("fused Adam unavailable (%s); using the default implementation", exc)
    return torch.optim.Adam(params, lr=lr)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state, keeping this optimizer's fused/foreach choice: a
    checkpoint written with (or without) the fused kernel resumes under either setting."""
    groups = []
    for saved, current in zip(state["param_groups"], optimizer.param_groups, strict=True):
        group = dict(saved)
        for key in ("fused", "foreach"):
            if key in current:
                group[key] = current[key]
        groups.append(group)
    # The flags are set before loading: they decide where `step` goes (the fused kernel
    # wants it as float32 beside the parameters).
    optimizer.load_state_dict({**state, "param_groups": groups})


class TrainingRun:
    """Base of the trainers. Subclasses set `self.model`, `self.progress` (with a
    `step`) and implement `_payload(full) -> dict`."""

    model: torch.nn.Module
    progress: Any

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        dist: DistContext | None = None,
        device: str | None = None,
    ) -> None:
        """`dist` and `device` come from seq2seq.distributed under torchrun: then only rank 0
        writes checkpoints, metrics and progress bars."""
        validate(cfg)  # also for a config built in Python rather than by Hydra
        self.cfg = cfg
        self.tcfg = cfg.trainer
        self.dist = dist or DistContext()
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.device = resolve_device(device or self.tcfg.device)
        self.stop_reason: str | None = None
        self.started = time.monotonic()

    def _payload(self, full: bool) -> dict[str, Any]:
        raise NotImplementedError

    def load_resume(self, required: tuple[str, ...], hint: str) -> dict[str, Any] | None:
        """The checkpoint named by trainer.resume, or None; `required` keys must be in it."""
        if not self.tcfg.get("resume"):
            return None
        candidates = resume_candidates(self.tcfg.resume)
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

    def save(self, name: str, full: bool = True) -> None:
        """Atomic save; a model with NaN/Inf weights is never written.

        A write the OS refuses (a full disk above all) stops the run with a TrainingError
        naming the file and the reason, rather than training on with nowhere to save:
        the checkpoints already on disk are intact, so at most the steps since the last
        one are lost, and the message says how to resume once there is space.
        """
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            log.error("not writing %s: the model has NaN/Inf weights", name)
            return
        payload = self._payload(full)  # on every process: it may gather their RNG states
        if not self.dist.is_main:
            return
        try:
            save_checkpoint(self.ckpt_dir / name, payload)
        except CheckpointWriteError as exc:
            raise TrainingError(
                f"{exc}. Training stopped at step {self.progress.step}. Free some space "
                "(or lower trainer.keep_last), then resume from the newest good checkpoint "
                f"with trainer.resume={self.run_dir}"
            ) from exc

    def periodic_save_due(self) -> bool:
        """Every trainer.checkpoint_every steps, or trainer.checkpoint_minutes of wall clock."""
        t, step = self.tcfg, self.progress.step
        if t.get("checkpoint_every") and step % t.checkpoint_every == 0:
            return True
        minutes = t.get("checkpoint_minutes")
        last = getattr(self, "_last_periodic_save", self.started)
        return bool(minutes) and time.monotonic() - last >= minutes * 60

    def save_periodic(self) -> None:
        """last.pt, plus step_{N}.pt of which only the newest trainer.keep_last are kept."""
        self._last_periodic_save = time.monotonic()
        keep = self.tcfg.get("keep_last") or 0
        if keep > 0:
            self.save(f"step_{self.progress.step}.pt")
            for old in step_checkpoints(self.ckpt_dir)[keep:] if self.dist.is_main else []:
                old.unlink(missing_ok=True)
        self.save("last.pt")

    def progress_bar(self, steps_per_epoch: int | None, desc: str) -> tqdm:
        """steps_per_epoch None: unknown (streamed data), so no total unless max_steps."""
        t = self.tcfg
        total = t.get("max_steps") or (t.max_epochs * steps_per_epoch if steps_per_epoch else None)
        return tqdm(
            total=total,
            initial=self.progress.step,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0,
            disable=not self.dist.is_main,
        )

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        try:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise TrainingError(
                f"cannot write {self.metrics_path}: {exc.strerror or exc}. Training stopped "
                f"at step {self.progress.step}; resume with trainer.resume={self.run_dir}"
            ) from exc

    def _budget_exhausted(self) -> str | None:
        t = self.tcfg
        if t.get("max_steps") and self.progress.step >= t.max_steps:
            return f"reached trainer.max_steps={t.max_steps}"
        if t.get("max_time") and time.monotonic() - self.started >= t.max_time * 60:
            return f"reached trainer.max_time={t.max_time} minutes"
        return None

    def _install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask the loop to stop; it then saves last.pt and says how to resume."""

        def request_stop(signum, _frame):
            self.stop_reason = f"received {signal.Signals(signum).name}"

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, request_stop)
            except ValueError:  # not in the main thread
                pass
