"""The training loop: teacher forcing, validation, checkpoints and exact resume.

One *step* is one optimizer update over `trainer.accumulate` batches (the last
update of an epoch may have fewer). The loss of an update is summed over all its
target tokens and divided by their total, so accumulating batches X and Y gives
the gradient of one update over X ∪ Y. The learning rate warms up linearly over
`trainer.warmup_steps` updates; reduce-on-plateau acts only after the warm-up.
With `trainer.scheduled_sampling`, updates whose teacher-forcing probability is
below 1 run the decoder token by token (seq2seq.scheduled_sampling); the coin
flips come from a generator seeded with (seed, step), so a resume stays exact.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sacrebleu
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from .data.batching import Batch, make_batch, padding_fraction, token_batches
from .data.pipeline import PreparedData, prepare_data, tokenize
from .inference import Translator
from .model import ModelSpec, Seq2Seq, spec_from_options
from .perf import autocast, check_precision
from .run_base import TrainingError, TrainingRun, load_optimizer_state, make_adam
from .scheduled_sampling import (
    scheduled_sampling_logits,
    teacher_forcing_probability,
    validate_schedule,
)
from .tokenizers import PAD_ID, tokenizer_from_state, tokenizer_to_state

log = logging.getLogger(__name__)

MAX_BAD_STEPS = 5  # consecutive non-finite losses before giving up


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint so a resume continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    best_score: float | None = None
    evals_without_improvement: int = 0
    bad_steps: int = 0
    skipped_steps: int = 0
    last_eval_step: int = -1
    updates: int = 0  # updates applied (finite loss and gradient)
    clip_events: int = 0  # updates whose gradient norm exceeded trainer.clip_norm


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


def model_spec_from_config(model_cfg: Any, src_vocab: int, tgt_vocab: int) -> ModelSpec:
    options = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else dict(model_cfg)
    )
    return spec_from_options(options, src_vocab, tgt_vocab)


def token_loss(logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0):
    """Cross-entropy summed over the non-padding target tokens."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(),
        tgt_out.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
        reduction="sum",
    )


def accumulate_gradients(
    batches: list[Batch],
    logits_of: Callable[[Batch], torch.Tensor],
    label_smoothing: float = 0.0,
) -> float | None:
    """Backpropagate one update's loss: summed over every target token of `batches`,
    divided by their total, so the gradients equal those of one batch holding them all.

    Gradients add up in `.grad` (zero them first). Returns the loss per token, or None
    as soon as a batch's loss is NaN/Inf (the update must then be skipped).
    """
    total = sum(b.num_tokens for b in batches)
    value = 0.0
    for batch in batches:
        logits = logits_of(batch)
        loss = token_loss(logits, batch.tgt_out.to(logits.device), label_smoothing) / total
        if not torch.isfinite(loss):
            return None
        loss.backward()
        value += float(loss.detach())
    return value


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator for the random choices of update `step`: a function of
    (seed, step) only, so it needs no place in the checkpoint."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The fraction of trainer.lr for update `step` (0-based): (step + 1) / warmup_steps
    during the warm-up, then 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def anneal_factor(used: float) -> float:
    """Linear decay of the LR to zero over the budget (1 at the start, 0 at the end)."""
    return max(0.0, 1.0 - used)


@dataclass
class Window:
    """Training statistics since the last log line."""

    tokens: int = 0
    loss: float = 0.0
    updates: int = 0
    start: float = field(default_factory=time.monotonic)

    def add(self, loss: float, tokens: int) -> None:
        self.loss += loss
        self.updates += 1
        self.tokens += tokens


class Trainer(TrainingRun):
    """Trains a translation model (`task: translation`)."""

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        self._check_recipe()
        seed_everything(self.tcfg.seed)
        if self.tcfg.threads:
            torch.set_num_threads(self.tcfg.threads)
        resumed = self.load_resume(("optimizer",), "it holds weights only (use last.pt)")
        tokenizers = None
        if resumed:
            saved = resumed["tokenizers"]
            tokenizers = (tokenizer_from_state(saved["src"]), tokenizer_from_state(saved["tgt"]))
        self.data: PreparedData = prepare_data(self.cfg.data, self.cfg.tokenizer, tokenizers)
        self.data.src_tokenizer.save(self.run_dir / "tokenizer" / "src")
        self.data.tgt_tokenizer.save(self.run_dir / "tokenizer" / "tgt")
        self.spec = model_spec_from_config(
            self.cfg.model, self.data.src_tokenizer.vocab_size, self.data.tgt_tokenizer.vocab_size
        )
        if (
            self.spec.tie_embeddings == "all"
            and self.data.src_tokenizer is not self.data.tgt_tokenizer
        ):
            raise ValueError(
                "model.tie_embeddings=all shares one embedding between source and target, so it "
                "needs one joint vocabulary: set tokenizer.joint=true (or tie_embeddings=decoder)"
            )
        self.model = Seq2Seq(self.spec).to(self.device)
        self.optimizer = make_adam(
            self.model.parameters(), self.tcfg.lr, fused=self.tcfg.get("fused_optimizer", True)
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            mode="max" if self.tcfg.early_stopping_metric == "bleu" else "min",
            factor=self.tcfg.lr_decay,
            patience=self.tcfg.lr_patience,
            min_lr=self.tcfg.min_lr,
        )
        self.progress = Progress()
        if resumed:
            self._restore(resumed)
        dev = self.data.dev
        self.dev_tokens, _ = tokenize(dev, self.data.src_tokenizer, self.data.tgt_tokenizer, 10**9)
        self.src_lengths = [len(s) for s in self.data.train.src_ids]
        self.tgt_lengths = [len(t) for t in self.data.train.tgt_ids]
        log.info(
            "model: %s, %d parameters; %d training pairs; vocab %d/%d",
            self.spec.cell,
            self.model.num_parameters(),
            len(self.data.train),
            self.spec.src_vocab_size,
            self.spec.tgt_vocab_size,
        )

    def _check_recipe(self) -> None:
        t = self.tcfg
        accumulate, warmup_steps = t.get("accumulate"), t.get("warmup_steps")
        self.accumulate = 1 if accumulate is None else accumulate
        self.warmup_steps = 0 if warmup_steps is None else warmup_steps
        if not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ValueError(f"trainer.accumulate must be an integer >= 1, got {self.accumulate!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(
                f"trainer.warmup_steps must be an integer >= 0 (0 = off), got {self.warmup_steps!r}"
            )
        validate_schedule(t.get("scheduled_sampling"))
        check_precision(self.device, t.get("precision", "fp32"), "trainer.precision")

    def _restore(self, payload: dict[str, Any]) -> None:
        # How the cells run (fused, compiled) does not change the weights.
        ignored = {"fused", "compile_cell"}
        saved = {k: v for k, v in payload["model_spec"].items() if k not in ignored}
        current = {k: v for k, v in self.spec.to_dict().items() if k not in ignored}
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise TrainingError(
                f"cannot resume: the checkpoint's model differs from the config in {changed}. "
                "Resume with the original model settings, or start a new run."
            )
        self.model.load_state_dict(payload["model"])
        load_optimizer_state(self.optimizer, payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.progress = Progress(**payload["progress"])
        set_rng_state(payload["rng"])

    # ----------------------------------------------------------- checkpoints
    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "model_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "tokenizers": {
                "src": tokenizer_to_state(self.cfg.tokenizer.type, self.data.src_tokenizer),
                "tgt": tokenizer_to_state(self.cfg.tokenizer.type, self.data.tgt_tokenizer),
            },
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": self.progress.__dict__.copy(),
        }
        if full:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng=rng_state(),
            )
        return payload

    # ------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        total_nll, total_tokens = 0.0, 0
        with torch.inference_mode():
            lengths = [
                max(len(s), len(t))
                for s, t in zip(self.dev_tokens.src_ids, self.dev_tokens.tgt_ids, strict=True)
            ]
            for indices in token_batches(
                lengths, lengths, self.tcfg.batch_tokens, 0, 0, shuffle=False
            ):
                batch = make_batch(
                    [self.dev_tokens.src_ids[i] for i in indices],
                    [self.dev_tokens.tgt_ids[i] for i in indices],
                )
                logits = self.model(
                    batch.src.to(self.device), batch.src_lengths, batch.tgt_in.to(self.device)
                )
                total_nll += float(token_loss(logits, batch.tgt_out.to(self.device)))
                total_tokens += batch.num_tokens
        n = self.tcfg.eval_sentences or len(self.data.dev)
        translator = Translator(self.model, self.data.src_tokenizer, self.data.tgt_tokenizer)
        hyps = translator.translate_text(
            self.data.dev.src[:n],
            search="greedy",
            batch_size=128,
            max_length=self.tcfg.eval_max_length,
        )
        bleu = sacrebleu.corpus_bleu(hyps, [self.data.dev.tgt[:n]]).score
        self.model.train()
        dev_loss = total_nll / max(total_tokens, 1)
        return {"dev_loss": dev_loss, "dev_ppl": math.exp(min(dev_loss, 50)), "dev_bleu": bleu}

    def _after_eval(self, metrics: dict[str, float], update_schedule: bool) -> None:
        key = "dev_bleu" if self.tcfg.early_stopping_metric == "bleu" else "dev_loss"
        self.progress.last_eval_step = self.progress.step
        score = metrics[key]
        better = self.progress.best_score is None or (
            score > self.progress.best_score
            if key == "dev_bleu"
            else score < self.progress.best_score
        )
        if better:
            self.progress.best_score = score
            self.save("best.pt", full=False)
        if update_schedule:
            self.progress.evals_without_improvement = (
                0 if better else self.progress.evals_without_improvement + 1
            )
            annealed = self.tcfg.get("anneal", "none") == "linear"
            if self.progress.step >= self.warmup_steps and not annealed:
                self.scheduler.step(score)  # the warm-up (or the anneal) owns the LR
            if self.tcfg.patience and self.progress.evals_without_improvement >= self.tcfg.patience:
                self.stop_reason = (
                    f"early stopping: no {key} improvement in {self.tcfg.patience} evaluations"
                )
        self._log(
            {
                "step": self.progress.step,
                "epoch": self.progress.epoch,
                **metrics,
                "best": self.progress.best_score,
            }
        )
        log.info(
            "step %d: dev loss %.3f, ppl %.2f, BLEU %.2f%s",
            self.progress.step,
            metrics["dev_loss"],
            metrics["dev_ppl"],
            metrics["dev_bleu"],
            " (best)" if better else "",
        )

    # -------------------------------------------------------------- training
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The training examples of each batch of `epoch`, in order."""
        t = self.tcfg
        return token_batches(
            self.src_lengths,
            self.tgt_lengths,
            t.batch_tokens,
            t.seed,
            epoch,
            batch_sentences=t.get("batch_sentences"),
            by_length=t.get("length_buckets", True),
        )

    def padding_fraction(self, epoch: int = 0) -> float:
        return padding_fraction(self.epoch_batches(epoch), self.src_lengths, self.tgt_lengths)

    def _next_update(self, epoch_batches: list[list[int]]) -> list[Batch]:
        """The batches of the next update: trainer.accumulate of them (fewer at epoch end)."""
        start = self.progress.batch_in_epoch
        train = self.data.train
        return [
            make_batch([train.src_ids[i] for i in indices], [train.tgt_ids[i] for i in indices])
            for indices in epoch_batches[start : start + self.accumulate]
        ]

    def _logits(self, batch: Batch, teacher_prob: float, generator) -> torch.Tensor:
        src, tgt_in = batch.src.to(self.device), batch.tgt_in.to(self.device)
        with autocast(self.device, self.tcfg.get("precision", "fp32")):
            if teacher_prob >= 1.0:
                return self.model(src, batch.src_lengths, tgt_in)
            return scheduled_sampling_logits(
                self.model, src, batch.src_lengths, tgt_in, teacher_prob, generator
            )

    def _warm_up(self, step: int) -> None:
        factor = warmup_factor(step, self.warmup_steps) if step < self.warmup_steps else 1.0
        if self.tcfg.get("anneal", "none") == "linear":
            factor *= anneal_factor(self._budget_used(step))
        elif step >= self.warmup_steps:
            return  # the plateau scheduler owns the LR
        for group in self.optimizer.param_groups:
            group["lr"] = self.tcfg.lr * factor

    def _budget_used(self, step: int) -> float:
        """The fraction of the run's budget spent: epochs of max_epochs, updates of
        max_steps or wall-clock of max_time, whichever is furthest along."""
        t, p = self.tcfg, self.progress
        per_epoch = getattr(self, "updates_per_epoch", 0) or 1
        used = (p.epoch + p.batch_in_epoch / self.accumulate / per_epoch) / t.max_epochs
        if t.get("max_steps"):
            used = step / t.max_steps
        if t.get("max_time"):
            used = max(used, (time.monotonic() - self.started) / (t.max_time * 60))
        return used

    def _train_step(self, batches: list[Batch]) -> float | None:
        """One update over `batches`; None if the loss or gradient is NaN/Inf (no update)."""
        step = self.progress.step
        teacher_prob = teacher_forcing_probability(self.tcfg.get("scheduled_sampling"), step)
        generator = step_generator(self.tcfg.seed, step) if teacher_prob < 1.0 else None
        self.optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradients(
            batches,
            lambda batch: self._logits(batch, teacher_prob, generator),
            self.tcfg.label_smoothing,
        )
        if loss is None:
            return None
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.tcfg.clip_norm or float("inf")
        )
        if not torch.isfinite(norm):
            return None
        self._warm_up(step)
        self.optimizer.step()
        self.progress.updates += 1
        if self.tcfg.clip_norm and float(norm) > self.tcfg.clip_norm:
            self.progress.clip_events += 1
        return loss

    def _handle_bad_step(self) -> None:
        self.progress.bad_steps += 1
        self.progress.skipped_steps += 1
        log.warning(
            "step %d: loss or gradient is NaN/Inf; update skipped (%d in a row)",
            self.progress.step,
            self.progress.bad_steps,
        )
        if self.progress.bad_steps >= MAX_BAD_STEPS:
            raise TrainingError(
                f"training diverged: {MAX_BAD_STEPS} NaN/Inf losses in a row "
                f"at step {self.progress.step}. "
                "Lower trainer.lr, set trainer.clip_norm, or check the data. "
                f"The last good checkpoint is in {self.ckpt_dir}."
            )

    def _log_window(self, window: Window, bar) -> None:
        t, p = self.tcfg, self.progress
        elapsed = time.monotonic() - window.start
        record = {
            "step": p.step,
            "epoch": p.epoch,
            "train_loss": window.loss / window.updates,
            "lr": self.optimizer.param_groups[0]["lr"],
            "tgt_tokens_per_s": window.tokens / max(elapsed, 1e-9),
            "clip_norm": t.clip_norm,
            "clip_events_total": p.clip_events,
            "updates_total": p.updates,
        }
        schedule = t.get("scheduled_sampling")
        if schedule and schedule.get("schedule", "none") != "none":
            record["teacher_forcing"] = teacher_forcing_probability(schedule, p.step - 1)
        self._log(record)
        postfix = {
            "loss": f"{record['train_loss']:.3f}",
            "tok/s": f"{record['tgt_tokens_per_s']:.0f}",
        }
        if t.max_time:
            left = max(0.0, t.max_time * 60 - (time.monotonic() - self.started))
            postfix["time_left"] = f"{left / 60:.1f}min"
        bar.set_postfix(postfix)

    def _run_update(self, epoch_batches: list[list[int]], window: Window, bar) -> Window:
        """One update, then logging, evaluation and checkpoints as they fall due."""
        t, p = self.tcfg, self.progress
        batches = self._next_update(epoch_batches)
        loss = self._train_step(batches)
        p.batch_in_epoch += len(batches)
        p.step += 1
        if loss is None:
            self._handle_bad_step()
        else:
            p.bad_steps = 0
            window.add(loss, sum(b.num_tokens for b in batches))
        bar.update(1)
        if p.step % t.log_every == 0 and window.updates:
            self._log_window(window, bar)
            window = Window()
        if t.eval_every and p.step % t.eval_every == 0:
            self._after_eval(self.evaluate(), update_schedule=True)
        self.stop_reason = self.stop_reason or self._budget_exhausted()
        if self.periodic_save_due() and self.stop_reason is None:
            self.save_periodic()
        return window

    def train(self) -> dict[str, Any]:
        self.setup()
        self._install_signal_handlers()
        t, p = self.tcfg, self.progress
        self.model.train()
        epoch_batches = self.epoch_batches(p.epoch)
        updates_per_epoch = self.updates_per_epoch = math.ceil(len(epoch_batches) / self.accumulate)
        log.info(
            "%d batches per epoch (%d updates), padding %.1f%%",
            len(epoch_batches),
            updates_per_epoch,
            100 * padding_fraction(epoch_batches, self.src_lengths, self.tgt_lengths),
        )
        bar = self.progress_bar(updates_per_epoch, "train")
        window = Window()
        self.stop_reason = self.stop_reason or self._budget_exhausted()
        while self.stop_reason is None and p.epoch < t.max_epochs:
            epoch_batches = self.epoch_batches(p.epoch)
            while p.batch_in_epoch < len(epoch_batches) and self.stop_reason is None:
                window = self._run_update(epoch_batches, window, bar)
            if p.batch_in_epoch >= len(epoch_batches):
                p.epoch += 1
                p.batch_in_epoch = 0
        bar.close()
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        t, p = self.tcfg, self.progress
        self.stop_reason = self.stop_reason or f"reached trainer.max_epochs={t.max_epochs}"
        log.info("stopping: %s", self.stop_reason)
        self.save("last.pt")
        if p.last_eval_step != p.step:
            self._after_eval(self.evaluate(), update_schedule=False)
        if self.stop_reason.startswith("received"):
            log.warning("interrupted; resume with: trainer.resume=%s", self.ckpt_dir / "last.pt")
        return {
            "step": p.step,
            "epoch": p.epoch,
            "best_score": p.best_score,
            "stop_reason": self.stop_reason,
        }
