"""Training the character language model (`task: lm`) with truncated BPTT (see tbptt.py).

`python -m seq2seq.train +exp=char_lm` (or `+exp=hello`) lands here through
`seq2seq.train.train` when `task: lm`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from seq2seq.lm.data import (
    CharVocab,
    eval_streams,
    load_text,
    make_streams,
    save_vocab,
    shuffle_lines,
)
from seq2seq.lm.model import (
    LN2,
    CharLM,
    LMSpec,
    confidence_table,
)
from seq2seq.lm.tbptt import Window, plan_updates, run_window
from seq2seq.nn.recurrent import map_state
from seq2seq.training.reproducibility import rng_state, seed_everything, set_rng_state
from seq2seq.training.run import MAX_BAD_STEPS, TrainingError, TrainingRun

log = logging.getLogger(__name__)


# ----------------------------------------------------------------- trainer
@dataclass
class LMProgress:
    step: int = 0  # updates attempted
    epoch: int = 0
    window: int = 0  # updates of `epoch` already made
    chars: int = 0  # characters that carried a loss
    best_bpc: float | None = None
    last_eval_step: int = -1
    clip_events: int = 0  # updates whose gradient norm exceeded trainer.clip_norm
    updates: int = 0  # updates actually applied (finite loss and gradient)
    skipped_steps: int = 0
    bad_steps: int = 0


class LMTrainer(TrainingRun):
    """Trains a character language model (`task: lm`) with truncated BPTT."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        self.last_metrics: dict[str, float] | None = None
        self.k1, self.k2 = self.tcfg.tbptt.k1, self.tcfg.tbptt.k2
        self.clip_norm = self.tcfg.clip_norm or None  # 0 and null: off

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        seed_everything(self.tcfg.seed)
        if self.tcfg.threads:
            torch.set_num_threads(self.tcfg.threads)
        resumed = self.load_resume(
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
        self.progress = LMProgress()
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
        saved = payload["lm_spec"]
        if saved != self.spec.to_dict():
            changed = sorted(k for k in saved if saved[k] != self.spec.to_dict().get(k))
            raise TrainingError(
                f"cannot resume: the checkpoint's model differs from the config in {changed}. "
                "Resume with the original model settings, or start a new run."
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.progress = LMProgress(**payload["progress"])
        state = payload.get("anchor_state")
        self.anchor_state = map_state(lambda t: t.to(self.device), state) if state else None
        set_rng_state(payload["rng"])

    # ----------------------------------------------------------- checkpoints
    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "task": "lm",
            "lm_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "vocab": self.vocab.state_dict(),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": asdict(self.progress),
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
    def evaluate(self) -> dict[str, float]:
        """Bits per character on the held-out text (every character after the first)."""
        self.model.eval()
        inputs, targets = eval_streams(self.valid_ids, self.tcfg.batch_size)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        chunk = self.tcfg.eval_chunk
        total, count = 0.0, 0
        with torch.inference_mode():
            state = self.model.initial_state(inputs.size(0))
            for lo in range(0, inputs.size(1), chunk):
                logits, state = self.model(inputs[:, lo : lo + chunk], state)
                tgt = targets[:, lo : lo + chunk]
                total += float(
                    F.cross_entropy(
                        logits.flatten(0, 1).float(),
                        tgt.flatten(),
                        ignore_index=-100,
                        reduction="sum",
                    )
                )
                count += int((tgt != -100).sum())
        self.model.train()
        loss = total / max(count, 1)
        return {"valid_bpc": loss / LN2, "valid_loss": loss, "valid_chars": count}

    def _after_eval(self, metrics: dict[str, float]) -> None:
        p = self.progress
        self.last_metrics = metrics
        p.last_eval_step = p.step
        better = p.best_bpc is None or metrics["valid_bpc"] < p.best_bpc
        if better:
            p.best_bpc = metrics["valid_bpc"]
            self.save("best.pt", full=False)
        self._log({"step": p.step, "epoch": p.epoch, **metrics, "best_bpc": p.best_bpc})
        log.info(
            "step %d: held-out %.4f bits/char (%d chars)%s",
            p.step,
            metrics["valid_bpc"],
            metrics["valid_chars"],
            " (best)" if better else "",
        )

    # -------------------------------------------------------------- training
    def update(self, window: Window, inputs: Tensor, targets: Tensor, state: Any) -> dict[str, Any]:
        """One TBPTT update; returns loss (nats/char, None if non-finite), grad norm, clipped."""
        model = self.model

        def run(lo: int, hi: int, s: Any) -> tuple[Tensor, Any]:
            return model.hidden(inputs[:, lo:hi], s)

        hidden, next_anchor = run_window(run, state, window)
        tgt = targets[:, window.loss_start : window.end]
        loss = F.cross_entropy(model.logits(hidden).flatten(0, 1).float(), tgt.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        result = {"loss": None, "grad_norm": None, "clipped": False, "chars": tgt.numel()}
        result["next_state"] = next_anchor
        if not torch.isfinite(loss):
            return result
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm or float("inf"))
        result["grad_norm"] = float(norm)
        if not torch.isfinite(norm):
            return result
        result["clipped"] = self.clip_norm is not None and float(norm) > self.clip_norm
        self.optimizer.step()
        result["loss"] = float(loss.detach())
        return result

    def _epoch_streams(self, epoch: int) -> tuple[Tensor, Tensor, list[Window]]:
        ids = shuffle_lines(self.train_ids, self.newline_id, self.tcfg.seed * 1000 + epoch)
        inputs, targets = make_streams(ids, self.tcfg.batch_size)
        return (
            inputs.to(self.device),
            targets.to(self.device),
            plan_updates(inputs.size(1), self.k1, self.k2),
        )

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
        self.setup()
        self._install_signal_handlers()
        t, p = self.tcfg, self.progress
        show_table = t.show_table
        if show_table and p.step == 0:
            self._show_table("before training")
        self.model.train()
        inputs, targets, windows = self._epoch_streams(p.epoch)
        log.info(
            "%d streams of %d characters; %d updates per epoch",
            inputs.size(0),
            inputs.size(1),
            len(windows),
        )
        bar = self.progress_bar(len(windows), "train lm")
        window_loss, window_steps, window_chars, window_clips = 0.0, 0, 0, 0
        window_start = time.monotonic()
        self.stop_reason = self.stop_reason or self._budget_exhausted()
        while self.stop_reason is None and p.epoch < t.max_epochs:
            if p.window == 0 or self.anchor_state is None:
                self.anchor_state = self.model.initial_state(inputs.size(0))
            while p.window < len(windows) and self.stop_reason is None:
                result = self.update(windows[p.window], inputs, targets, self.anchor_state)
                self.anchor_state = result["next_state"]
                p.window += 1
                p.step += 1
                if result["loss"] is None:
                    p.bad_steps += 1
                    p.skipped_steps += 1
                    log.warning(
                        "step %d: loss or gradient is NaN/Inf; update skipped (%d in a row)",
                        p.step,
                        p.bad_steps,
                    )
                    if p.bad_steps >= MAX_BAD_STEPS:
                        raise TrainingError(
                            f"training diverged: {MAX_BAD_STEPS} NaN/Inf losses in a row at "
                            f"step {p.step}. Lower trainer.lr, set trainer.clip_norm, or choose "
                            f"another model.init. The last good checkpoint is in {self.ckpt_dir}."
                        )
                else:
                    p.bad_steps = 0
                    p.updates += 1
                    p.chars += result["chars"]
                    p.clip_events += int(result["clipped"])
                    window_clips += int(result["clipped"])
                    window_loss += result["loss"]
                    window_steps += 1
                    window_chars += result["chars"]
                bar.update(1)
                if p.step % t.log_every == 0 and window_steps:
                    elapsed = time.monotonic() - window_start
                    record = {
                        "step": p.step,
                        "epoch": p.epoch,
                        "train_bpc": window_loss / window_steps / LN2,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "chars_per_s": window_chars / max(elapsed, 1e-9),
                        "grad_norm": result["grad_norm"],
                        "clip_events": window_clips,
                        "clip_fraction": window_clips / window_steps,
                        "clip_events_total": p.clip_events,
                        "updates_total": p.updates,
                    }
                    self._log(record)
                    postfix = {
                        "bpc": f"{record['train_bpc']:.3f}",
                        "char/s": f"{record['chars_per_s']:.0f}",
                        "clipped": f"{100 * record['clip_fraction']:.0f}%",
                    }
                    if t.max_time:
                        left = max(0.0, t.max_time * 60 - (time.monotonic() - self.started))
                        postfix["time_left"] = f"{left / 60:.1f}min"
                    bar.set_postfix(postfix)
                    window_loss, window_steps, window_chars, window_clips = 0.0, 0, 0, 0
                    window_start = time.monotonic()
                if t.eval_every and p.step % t.eval_every == 0:
                    self._after_eval(self.evaluate())
                self.stop_reason = self.stop_reason or self._budget_exhausted()
                if self.periodic_save_due() and not self.stop_reason:
                    self.save_periodic()
            if p.window >= len(windows):
                p.epoch += 1
                p.window = 0
                self.anchor_state = None
                if p.epoch < t.max_epochs and self.stop_reason is None:
                    inputs, targets, windows = self._epoch_streams(p.epoch)
        bar.close()
        self.stop_reason = self.stop_reason or f"reached trainer.max_epochs={t.max_epochs}"
        log.info("stopping: %s", self.stop_reason)
        self.save("last.pt")
        if p.last_eval_step != p.step or self.last_metrics is None:
            self._after_eval(self.evaluate())
        final = self.last_metrics
        clip = self.clip_report()
        log.info("%s", clip)
        self._log(
            {
                "step": p.step,
                "epoch": p.epoch,
                "event": "end",
                "valid_bpc": final["valid_bpc"],
                "best_bpc": p.best_bpc,
                "clip_norm": self.clip_norm,
                "clip_events_total": p.clip_events,
                "updates_total": p.updates,
                "stop_reason": self.stop_reason,
            }
        )
        log.info("held-out bits per character: %.4f (best %.4f)", final["valid_bpc"], p.best_bpc)
        if show_table:
            self._show_table(f"after {p.step} updates")
        if self.stop_reason.startswith("received"):
            log.warning("interrupted; resume with: trainer.resume=%s", self.ckpt_dir / "last.pt")
        return {
            "step": p.step,
            "epoch": p.epoch,
            "valid_bpc": final["valid_bpc"],
            "best_bpc": p.best_bpc,
            "clip_events": p.clip_events,
            "updates": p.updates,
            "stop_reason": self.stop_reason,
        }


def train_lm(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train a character LM into run_dir (task: lm); returns a summary."""
    return LMTrainer(cfg, Path(run_dir)).train()
