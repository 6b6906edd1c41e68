"""What every training loop shares: run folder, metrics log (and the dashboards fed the
same records), budgets, signals, the NaN guard, log intervals, evaluation bookkeeping,
checkpoints and summary.json."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from seq2seq.config import validate
from seq2seq.training.checkpointing import Checkpointer, TrainingError
from seq2seq.training.distributed import DistContext
from seq2seq.training.evaluation import Scoreboard
from seq2seq.training.loggers import RunLoggers
from seq2seq.training.progress import LogInterval, MetricsLog, RunProgress, progress_bar
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.stopping import Budget, on_stop_signal
from seq2seq.training.summary import run_summary, write_summary

log = logging.getLogger(__name__)

MAX_BAD_STEPS = 5  # consecutive non-finite losses (or gradients) before giving up

__all__ = ["MAX_BAD_STEPS", "TrainingError", "TrainingRun", "resolve_device"]


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


class TrainingRun:
    """Base of the trainers: the steps of the training loop they share.

    A trainer sets up its model, optimizer and data in `setup`, writes its loop in
    `train` from these steps, and defines `_eval_metric()` (the dev score that picks
    best.pt and drives early stopping), `_payload(full)` (a checkpoint), `evaluate()`,
    `_interval_record(interval)` and `_postfix(record)` (a log record and its progress-bar
    summary) and `_announce_eval(metrics, better)`. Every record written to metrics.jsonl
    also goes to the dashboards of trainer.loggers (seq2seq.training.loggers).
    """

    task = "translation"
    progress_type: type[RunProgress] = RunProgress
    best_key = "best"  # the best score's name in evaluation records
    speed_key = "tgt_tokens_per_s"  # the training speed's name in log records
    divergence_hint = "check the data"
    schedule: LRSchedule | None = None
    model: torch.nn.Module

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        dist: DistContext | None = None,
        device: str | None = None,
    ) -> None:
        """`dist` and `device` come from seq2seq.distributed under torchrun: then only rank 0
        writes checkpoints, metrics, summary.json and progress bars."""
        validate(cfg)  # also for a config built in Python rather than by Hydra
        self.cfg = cfg
        self.tcfg = cfg.trainer
        self.dist = dist or DistContext()
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", self.dist.is_main)
        self.loggers = RunLoggers([])  # opened by `start`, once the step is known
        self.restore_signals: Callable[[], None] = lambda: None  # set by `start`
        self.device = resolve_device(device or self.tcfg.device)
        self.stop_reason: str | None = None
        self.budget = Budget(self.tcfg)
        self.checkpoints = Checkpointer(self.run_dir, self.tcfg, self.dist)
        patience = self.tcfg.get("patience")  # early stopping is for translation only
        self.scoreboard = Scoreboard(self._eval_metric(), patience)
        self.progress = self.progress_type()
        self.interval = LogInterval()
        self.speeds: list[float] = []  # of the log intervals, for summary.json
        self.last_metrics: dict[str, float] | None = None
        self.averaged: dict[str, Any] | None = None  # trainer.average_last's checkpoint

    def _needs_final_eval(self) -> bool:
        return self.progress.last_eval_step != self.progress.step

    def _after_training(self, interrupted: bool) -> None:
        """After the final save and evaluation."""

    def _report_evaluation(self, step: int) -> None:
        """After an evaluation's record is written: what else it leaves (rank 0)."""

    # ------------------------------------------------------ steps of the loop
    def start(self, updates_per_epoch: int | None, desc: str) -> None:
        """Signal handlers, the dashboards, the progress bar, and whether there is anything
        left to do."""
        self.restore_signals = on_stop_signal(self.request_stop)
        self.model.train()
        p = self.progress
        self.loggers = RunLoggers.open(self.cfg, self.run_dir, p.step, self.dist.is_main)
        self.bar = progress_bar(
            self.tcfg,
            self.progress.step,
            updates_per_epoch,
            desc,
            self.dist.is_main,
            self.budget.elapsed,
        )
        self.interval = LogInterval()
        self.stop_reason, _ = self.dist.agree_on_stop(self._stop_reason(), False)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def count_update(self, loss: float | None, amount: int, clipped: bool = False) -> None:
        """Count one update (loss None: skipped as NaN/Inf; too many in a row is divergence)."""
        p = self.progress
        p.step += 1
        if loss is None:
            p.bad_steps += 1
            p.skipped_steps += 1
            log.warning(
                "step %d: loss or gradient is NaN/Inf; update skipped (%d in a row)",
                p.step,
                p.bad_steps,
            )
            if p.bad_steps >= MAX_BAD_STEPS:
                raise TrainingError(
                    f"training diverged: {MAX_BAD_STEPS} NaN/Inf losses in a row "
                    f"at step {p.step}. Lower trainer.lr, set trainer.clip_norm, or "
                    f"{self.divergence_hint}. The last good checkpoint is in {self.ckpt_dir}."
                )
        else:
            p.bad_steps = 0
            self.interval.add(loss, amount, clipped)
        self.bar.advance(p.step)

    def maybe_log(self) -> None:
        """Every trainer.log_every steps: a metrics.jsonl record of the interval."""
        if self.progress.step % self.tcfg.log_every or not self.interval.updates:
            return
        record = self._interval_record(self.interval)
        self.speeds.append(record[self.speed_key])
        self._log(record)
        postfix = self._postfix(record)
        if left := self.budget.time_left():
            postfix["time_left"] = left
        self.bar.set_postfix(postfix)
        self.interval = LogInterval()

    def maybe_evaluate(self) -> None:
        """Every trainer.eval_every steps: dev scores, best.pt, LR plateau, early stopping."""
        if self.tcfg.eval_every and self.progress.step % self.tcfg.eval_every == 0:
            self.record_evaluation(self.evaluate_everywhere(), update_schedule=True)

    def maybe_checkpoint(self) -> None:
        """Settle whether to stop (on every process at once), else save periodically."""
        due = self.checkpoints.periodic_due(self.progress.step)
        self.stop_reason, save = self.dist.agree_on_stop(self._stop_reason(), due)
        if save and self.stop_reason is None:
            self.checkpoints.save_periodic(self.progress.step, self.save)

    def finish(self) -> None:
        """The final last.pt and evaluation, and what the trainer does at the end."""
        self.bar.close()
        self.stop_reason = self.stop_reason or f"reached trainer.max_epochs={self.tcfg.max_epochs}"
        log.info("stopping: %s", self.stop_reason)
        self.save("last.pt")
        if self._needs_final_eval():
            self.record_evaluation(self.evaluate_everywhere(), update_schedule=False)
        interrupted = self.stop_reason.startswith("received")
        self._after_training(interrupted)
        self.loggers.close()
        if interrupted:
            log.warning("interrupted; resume with: trainer.resume=%s", self.ckpt_dir / "last.pt")

    # ------------------------------------------------------------- evaluation
    def evaluate_everywhere(self) -> dict[str, float]:
        """Rank 0 validates; every process gets its metrics, so that the LR schedule and
        early stopping stay the same on all of them."""
        return self.dist.broadcast(self.evaluate() if self.dist.is_main else None)

    def record_evaluation(self, metrics: dict[str, float], update_schedule: bool) -> None:
        p = self.progress
        self.last_metrics = metrics
        better = self.scoreboard.record(p, metrics)
        if better:
            self.save("best.pt", full=False)
        if update_schedule:
            stop = self.scoreboard.patience_left(p, better)
            if self.schedule is not None:
                self.schedule.after_eval(p.step, metrics[self.scoreboard.metric])
            self.stop_reason = stop or self.stop_reason
        record = {"step": p.step, "epoch": p.epoch, **metrics, self.best_key: p.best_score}
        self._log({**record, "wall_s": round(self.wall_seconds(), 3)})
        if self.dist.is_main:
            self._report_evaluation(p.step)
        self._announce_eval(metrics, better)

    # ---------------------------------------------------------- run folder
    def save(self, name: str, full: bool = True) -> None:
        """checkpoints/NAME (see seq2seq.training.checkpointing.Checkpointer.save)."""
        self.checkpoints.save(name, self.model, lambda: self._payload(full), self.progress.step)

    def progress_state(self) -> dict[str, Any]:
        """The progress as saved in a checkpoint, with the training time so far."""
        return {**asdict(self.progress), "wall_s": self.wall_seconds()}

    def wall_seconds(self) -> float:
        """Seconds of training, over every run of a resumed one."""
        return self.progress.wall_s + self.budget.elapsed()

    def _log(self, record: dict[str, Any]) -> None:
        """One record to metrics.jsonl and to the dashboards."""
        self.loggers.record(record)
        try:
            self.metrics.write(record)
        except OSError as exc:
            raise TrainingError(
                f"cannot write {self.metrics.path}: {exc.strerror or exc}. Training stopped "
                f"at step {self.progress.step}; resume with trainer.resume={self.run_dir}"
            ) from exc

    @contextmanager
    def summary_on_exit(self) -> Iterator[None]:
        """summary.json however training ends; an error is recorded in it, then raised.
        The dashboards close and the signal handlers are restored either way."""
        try:
            yield
        except Exception as exc:
            self.write_summary(error=exc)
            raise
        finally:
            self.loggers.close()
            self.restore_signals()
        self.write_summary()

    def write_summary(self, error: Exception | None = None) -> None:
        """run_dir/summary.json (rank 0); failing to write it does not hide the run's error."""
        if not self.dist.is_main:
            return
        try:
            write_summary(self.run_dir, run_summary(self, error))
        except OSError as exc:
            log.error("cannot write %s: %s", self.run_dir / "summary.json", exc.strerror or exc)

    def _stop_reason(self) -> str | None:
        """The reason already set (a signal, early stopping), else a spent budget."""
        return self.stop_reason or self.budget.exhausted(self.progress.step)
