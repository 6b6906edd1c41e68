"""Training the character language model (`task: lm`) with truncated BPTT (see tbptt.py).

`python -m seq2seq.train +exp=char_lm` (or `+exp=hello`) lands here through
`seq2seq.train.train` when `task: lm`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from seq2seq.lm.data import (
    CharVocab,
    load_text,
    make_streams,
    save_vocab,
    shuffle_lines,
)
from seq2seq.lm.evaluation import held_out_scores
from seq2seq.lm.model import (
    LN2,
    CharLM,
    LMSpec,
    confidence_table,
)
from seq2seq.lm.tbptt import Window, plan_updates, run_window
from seq2seq.nn.recurrent import map_state
from seq2seq.training.checkpointing import check_same_model, load_resume
from seq2seq.training.progress import LogInterval, RunProgress
from seq2seq.training.reproducibility import rng_state, seed_everything, set_rng_state
from seq2seq.training.run import TrainingRun

log = logging.getLogger(__name__)


# ----------------------------------------------------------------- trainer
@dataclass
class LMProgress(RunProgress):
    """Where character-LM training stands; saved in every checkpoint."""

    update_in_epoch: int = 0  # TBPTT updates of `epoch` already made
    chars: int = 0  # characters that carried a loss


# Progress keys of checkpoints written before the trainers shared their bookkeeping.
RENAMED_PROGRESS = {"window": "update_in_epoch", "best_bpc": "best_score"}


def progress_from_checkpoint(saved: dict[str, Any]) -> LMProgress:
    return LMProgress(**{RENAMED_PROGRESS.get(k, k): v for k, v in saved.items()})


class LMTrainer(TrainingRun):
    """Trains a character language model (`task: lm`) with truncated BPTT."""

    task = "lm"
    progress_type = LMProgress
    progress: LMProgress
    best_key = "best_bpc"
    speed_key = "chars_per_s"
    divergence_hint = "choose another model.init"

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        self.k1, self.k2 = self.tcfg.tbptt.k1, self.tcfg.tbptt.k2
        self.clip_norm = self.tcfg.clip_norm or None  # 0 and null: off
        self.grad_norm: float | None = None  # of the latest update, for the log

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        seed_everything(self.tcfg.seed)
        if self.tcfg.threads:
            torch.set_num_threads(self.tcfg.threads)
        resumed = load_resume(
            self.tcfg.resume,
            ("optimizer", "lm_spec"),
            "it is not a full character-LM checkpoint (use the run's checkpoints/last.pt)",
        )
        data = self.cfg.data
        self.text = load_text(data)
        if resumed:
            self.vocab = CharVocab.from_state_dict(resumed["vocab"])
        else:
            self.vocab = CharVocab.build(self.text.train, data.min_char_count, unk=data.unk)
        save_vocab(self.vocab, self.run_dir / "vocab")
        self.train_ids = torch.tensor(self.vocab.encode(self.text.train), dtype=torch.long)
        self.valid_ids = torch.tensor(self.vocab.encode(self.text.valid), dtype=torch.long)
        if self.vocab.unk_id is not None:
            unseen = int((self.valid_ids == self.vocab.unk_id).sum())
            if unseen:
                log.info(
                    "%d held-out characters are outside the vocabulary (scored as U+FFFD)", unseen
                )
        self.newline_id = self.vocab.index.get("\n") if data.shuffle_lines else None
        self.spec = LMSpec.from_config(self.cfg.model, len(self.vocab))
        self.model = CharLM(self.spec).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tcfg.lr)
        self.anchor_state: Any = None
        if resumed:
            self._restore(resumed)
        log.info(
            "char LM: %s %s, %d parameters; vocabulary %d characters; %d training and %d "
            "held-out characters from %s; TBPTT k1=%s k2=%s",
            self.spec.cell,
            self.spec.cell_options or "",
            self.model.num_parameters(),
            len(self.vocab),
            self.train_ids.numel(),
            self.valid_ids.numel(),
            self.text.source,
            self.k1 or "full",
            self.k2 or "full",
        )

    def _restore(self, payload: dict[str, Any]) -> None:
        check_same_model(payload["lm_spec"], self.spec.to_dict())
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.progress = progress_from_checkpoint(payload["progress"])
        state = payload.get("anchor_state")
        self.anchor_state = map_state(lambda t: t.to(self.device), state) if state else None
        set_rng_state(payload["rng"])

    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "task": "lm",
            "lm_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "vocab": self.vocab.state_dict(),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": self.progress_state(),
        }
        if full:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                rng=rng_state(),
                anchor_state=map_state(lambda t: t.detach().cpu(), self.anchor_state)
                if self.anchor_state is not None
                else None,
            )
        return payload

    # ------------------------------------------------------------ evaluation
    def _eval_metric(self) -> str:
        return "valid_bpc"

    def evaluate(self) -> dict[str, float]:
        return held_out_scores(
            self.model, self.valid_ids, self.tcfg.batch_size, self.tcfg.eval_chunk, self.device
        )

    def _announce_eval(self, metrics: dict[str, float], better: bool) -> None:
        log.info(
            "step %d: held-out %.4f bits/char (%d chars)%s",
            self.progress.step,
            metrics["valid_bpc"],
            metrics["valid_chars"],
            " (best)" if better else "",
        )

    def _needs_final_eval(self) -> bool:
        return super()._needs_final_eval() or self.last_metrics is None

    # -------------------------------------------------------------- training
    def update(
        self, window: Window, inputs: Tensor, targets: Tensor, state: Any
    ) -> tuple[float | None, int, bool, Any]:
        """One TBPTT update over `window` of the streams (inputs, targets: [B, T]), from
        the recurrent `state` at its anchor. Returns the loss in nats per character (None
        if the loss or gradient is NaN/Inf: no update), the characters that carried a
        loss, whether the gradient was clipped, and the state to anchor the next window."""
        model = self.model

        def run(lo: int, hi: int, s: Any) -> tuple[Tensor, Any]:
            return model.hidden(inputs[:, lo:hi], s)

        hidden, next_anchor = run_window(run, state, window)
        tgt = targets[:, window.loss_start : window.end]
        loss = F.cross_entropy(model.logits(hidden).flatten(0, 1).float(), tgt.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_norm = None
        if not torch.isfinite(loss):
            return None, tgt.numel(), False, next_anchor
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm or float("inf"))
        self.grad_norm = float(norm)
        if not torch.isfinite(norm):
            return None, tgt.numel(), False, next_anchor
        self.optimizer.step()
        clipped = self.clip_norm is not None and float(norm) > self.clip_norm
        return float(loss.detach()), tgt.numel(), clipped, next_anchor

    def _epoch_streams(self, epoch: int) -> tuple[Tensor, Tensor, list[Window]]:
        ids = shuffle_lines(self.train_ids, self.newline_id, self.tcfg.seed * 1000 + epoch)
        inputs, targets = make_streams(ids, self.tcfg.batch_size)
        return (
            inputs.to(self.device),
            targets.to(self.device),
            plan_updates(inputs.size(1), self.k1, self.k2),
        )

    def _interval_record(self, interval: LogInterval) -> dict[str, Any]:
        p = self.progress
        return {
            "step": p.step,
            "epoch": p.epoch,
            "train_bpc": interval.loss / interval.updates / LN2,
            "lr": self.optimizer.param_groups[0]["lr"],
            "chars_per_s": interval.per_second(),
            "grad_norm": self.grad_norm,
            "clip_events": interval.clips,
            "clip_fraction": interval.clips / interval.updates,
            "clip_events_total": p.clip_events,
            "updates_total": p.updates,
        }

    def _postfix(self, record: dict[str, Any]) -> dict[str, str]:
        return {
            "bpc": f"{record['train_bpc']:.3f}",
            "char/s": f"{record['chars_per_s']:.0f}",
            "clipped": f"{100 * record['clip_fraction']:.0f}%",
        }

    def _show_table(self, when: str) -> None:
        table = confidence_table(self.model, self.vocab, self.text.valid[:41])
        text = f"confidence per time step ({when}):\n{table}\n"
        print(f"\n{text}", flush=True)
        with open(self.run_dir / "confidence.txt", "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def clip_report(self) -> str:
        p = self.progress
        if not self.clip_norm:
            return "gradient clipping is off (trainer.clip_norm unset)"
        share = 100.0 * p.clip_events / max(p.updates, 1)
        return (
            f"gradient clipping (norm > {self.clip_norm:g}) fired in {p.clip_events} of "
            f"{p.updates} updates ({share:.1f}%)"
        )

    def train(self) -> dict[str, Any]:
        """For each epoch, the streams cut into TBPTT windows; for each window: update →
        log → maybe evaluate → maybe checkpoint → maybe stop. summary.json records how
        it ended, errors included."""
        with self.summary_on_exit():
            self.setup()
            t, p = self.tcfg, self.progress
            if t.show_table and p.step == 0:
                self._show_table("before training")
            inputs, targets, windows = self._epoch_streams(p.epoch)
            log.info(
                "%d streams of %d characters; %d updates per epoch",
                inputs.size(0),
                inputs.size(1),
                len(windows),
            )
            self.start(len(windows), "train lm")
            while self.stop_reason is None and p.epoch < t.max_epochs:
                if p.update_in_epoch == 0 or self.anchor_state is None:
                    self.anchor_state = self.model.initial_state(inputs.size(0))
                while p.update_in_epoch < len(windows) and self.stop_reason is None:
                    window = windows[p.update_in_epoch]
                    loss, chars, clipped, self.anchor_state = self.update(
                        window, inputs, targets, self.anchor_state
                    )
                    p.update_in_epoch += 1
                    if loss is not None:
                        p.updates += 1
                        p.chars += chars
                        p.clip_events += int(clipped)
                    self.count_update(loss, chars, clipped)
                    self.maybe_log()
                    self.maybe_evaluate()
                    self.maybe_checkpoint()
                if p.update_in_epoch >= len(windows):
                    p.epoch, p.update_in_epoch = p.epoch + 1, 0
                    self.anchor_state = None
                    if p.epoch < t.max_epochs and self.stop_reason is None:
                        inputs, targets, windows = self._epoch_streams(p.epoch)
            self.finish()
        return {
            "step": p.step,
            "epoch": p.epoch,
            "valid_bpc": self.last_metrics["valid_bpc"],
            "best_bpc": p.best_score,
            "clip_events": p.clip_events,
            "updates": p.updates,
            "stop_reason": self.stop_reason,
        }

    def _after_training(self, interrupted: bool) -> None:
        p = self.progress
        log.info("%s", self.clip_report())
        self._log(
            {
                "step": p.step,
                "epoch": p.epoch,
                "event": "end",
                "valid_bpc": self.last_metrics["valid_bpc"],
                "best_bpc": p.best_score,
                "clip_norm": self.clip_norm,
                "clip_events_total": p.clip_events,
                "updates_total": p.updates,
                "stop_reason": self.stop_reason,
            }
        )
        log.info(
            "held-out bits per character: %.4f (best %.4f)",
            self.last_metrics["valid_bpc"],
            p.best_score,
        )
        if self.tcfg.show_table:
            self._show_table(f"after {p.step} updates")


def train_lm(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train a character LM into run_dir (task: lm); returns a summary."""
    return LMTrainer(cfg, Path(run_dir)).train()
