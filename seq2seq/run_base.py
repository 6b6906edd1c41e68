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

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, incompatible resume, …); the message says why."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def step_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The kept periodic checkpoints `step_{N}.pt`, newest (highest N) first."""
    found = []
    for path in Path(ckpt_dir).glob("step_*.pt"):
        number = path.stem.removeprefix("step_")
        if number.isdigit():
            found.append((int(number), path))
    return [path for _, path in sorted(found, reverse=True)]


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

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.tcfg = cfg.trainer
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.device = resolve_device(self.tcfg.device)
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
        """Atomic save; a model with NaN/Inf weights is never written."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            log.error("not writing %s: the model has NaN/Inf weights", name)
            return
        save_checkpoint(self.ckpt_dir / name, self._payload(full))

    def save_periodic(self) -> None:
        """last.pt, plus step_{N}.pt of which only the newest trainer.keep_last are kept."""
        keep = self.tcfg.get("keep_last") or 0
        if keep > 0:
            self.save(f"step_{self.progress.step}.pt")
            for old in step_checkpoints(self.ckpt_dir)[keep:]:
                old.unlink(missing_ok=True)
        self.save("last.pt")

    def progress_bar(self, steps_per_epoch: int, desc: str) -> tqdm:
        t = self.tcfg
        total = t.get("max_steps") or t.max_epochs * steps_per_epoch
        return tqdm(
            total=total,
            initial=self.progress.step,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0,
        )

    def _log(self, record: dict[str, Any]) -> None:
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

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
