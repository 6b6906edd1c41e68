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
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import sacrebleu
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from seq2seq.checkpoint import save_checkpoint
from seq2seq.data.batching import Batch, make_batch, padding_fraction, token_batches
from seq2seq.data.pipeline import PreparedData, prepare_data, tokenize
from seq2seq.data.streaming import StreamStats, check_shards_for_ranks, stream_batches
from seq2seq.hardware import autocast, check_precision, flatten_rnn_weights, grad_scaler
from seq2seq.nn.model import ModelSpec, Seq2Seq, spec_from_options
from seq2seq.tokenizers import PAD_ID, tokenizer_from_state, tokenizer_to_state
from seq2seq.training.averaging import average_checkpoints
from seq2seq.training.distributed import sync_gradients_on_last, wrap_for_training
from seq2seq.training.reproducibility import (
    rng_state,
    seed_everything,
    set_rng_state,
    step_generator,
)
from seq2seq.training.run import (
    MAX_BAD_STEPS,
    TrainingError,
    TrainingRun,
    checkpoint_step,
    load_optimizer_state,
    make_adam,
    step_checkpoints,
)
from seq2seq.training.scheduled_sampling import (
    TrainingForward,
    teacher_forcing_probability,
    validate_schedule,
)
from seq2seq.translation.translator import Translator

log = logging.getLogger(__name__)


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
    total_tokens: float | None = None,
    contexts: Iterable[AbstractContextManager] | None = None,
    scale: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float | None:
    """Backpropagate one update's loss: summed over every target token of `batches`,
    divided by their total, so the gradients equal those of one batch holding them all.

    Gradients add up in `.grad` (zero them first). `total_tokens` overrides the divisor:
    under data parallelism it is the update's tokens over all processes divided by their
    number, because DDP averages the processes' gradients. `contexts` gives one context
    per batch (DDP's `no_sync` for all but the last); `scale` multiplies each loss before
    its backward (fp16 loss scaling). Every batch is backpropagated even
    after a NaN/Inf loss, so that processes stay in step; the result is then None (the
    update must be skipped), else the loss per token.
    """
    total = total_tokens or sum(b.num_tokens for b in batches)
    contexts = contexts or [nullcontext() for _ in batches]
    value, finite = 0.0, True
    for batch, context in zip(batches, contexts, strict=False):
        with context:
            logits = logits_of(batch)
            loss = token_loss(logits, batch.tgt_out.to(logits.device), label_smoothing) / total
            finite = finite and bool(torch.isfinite(loss))
            if loss.requires_grad:
                (scale(loss) if scale else loss).backward()
        value += float(loss.detach())
    return value if finite else None


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
class LogInterval:
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
        self.data: PreparedData = self._prepare_data(resumed["tokenizers"] if resumed else None)
        if self.dist.is_main:
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
        self.scaler = grad_scaler(self.device, self.tcfg.get("precision", "fp32"))
        if resumed:
            self._restore(resumed)
        elif self.dist.rank:
            seed_everything(self.tcfg.seed + 7919 * self.dist.rank)  # own dropout masks
        self.train_forward = wrap_for_training(TrainingForward(self.model), self.dist, self.device)
        flatten_rnn_weights(self.model)
        dev = self.data.dev
        self.dev_tokens, _ = tokenize(dev, self.data.src_tokenizer, self.data.tgt_tokenizer, 10**9)
        self.src_lengths = [len(s) for s in self.data.train.src_ids]
        self.tgt_lengths = [len(t) for t in self.data.train.tgt_ids]
        log.info(
            "model: %s, %d parameters; %s training pairs; vocab %d/%d",
            self.spec.cell,
            self.model.num_parameters(),
            "streamed" if self.data.shards else len(self.data.train),
            self.spec.src_vocab_size,
            self.spec.tgt_vocab_size,
        )

    def _prepare_data(self, saved_tokenizers: dict[str, Any] | None) -> PreparedData:
        """Under torchrun, rank 0 trains the tokenizers (or takes them from the cache) and
        every other process uses exactly those."""
        if saved_tokenizers is None and self.dist.enabled:
            data = prepare_data(self.cfg.data, self.cfg.tokenizer) if self.dist.is_main else None
            saved_tokenizers = self.dist.broadcast(data and self._tokenizer_states(data))
            if data is not None:
                return data
        tokenizers = None
        if saved_tokenizers is not None:
            src = tokenizer_from_state(saved_tokenizers["src"])
            joint = self.cfg.tokenizer.get("joint")  # one object, as prepare_data makes it
            tokenizers = (src, src if joint else tokenizer_from_state(saved_tokenizers["tgt"]))
        return prepare_data(self.cfg.data, self.cfg.tokenizer, tokenizers)

    def _tokenizer_states(self, data: PreparedData) -> dict[str, Any]:
        kind = self.cfg.tokenizer.type
        return {
            "src": tokenizer_to_state(kind, data.src_tokenizer),
            "tgt": tokenizer_to_state(kind, data.tgt_tokenizer),
        }

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
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.progress = Progress(**payload["progress"])
        rngs = payload.get("rng_ranks") or [payload["rng"]]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:  # the global batches do not depend on the number of processes; dropout does
            log.warning(
                "resuming %d process(es) from a checkpoint of %d: dropout masks will differ "
                "from an uninterrupted run",
                self.dist.world_size,
                len(rngs),
            )
            set_rng_state(rngs[0])
            if self.dist.rank:
                seed_everything(self.tcfg.seed + 7919 * self.dist.rank + self.progress.step)

    # ----------------------------------------------------------- checkpoints
    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "model_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "tokenizers": self._tokenizer_states(self.data),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": self.progress.__dict__.copy(),
        }
        if full:
            rngs = self.dist.gather(rng_state())  # each process has its own dropout masks
            payload.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=rngs[0],
                rng_ranks=rngs,
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

    def evaluate_everywhere(self) -> dict[str, float]:
        """Rank 0 validates; every process gets its metrics, so that the LR schedule and
        early stopping stay the same on all of them."""
        return self.dist.broadcast(self.evaluate() if self.dist.is_main else None)

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
        batches = token_batches(
            self.src_lengths,
            self.tgt_lengths,
            t.batch_tokens,
            t.seed,
            epoch,
            batch_sentences=t.get("batch_sentences"),
            by_length=t.get("length_buckets", True),
        )
        # Under torchrun every process takes a share of each batch; a batch with fewer
        # sentences than processes (at most one per epoch) cannot be shared.
        return [b for b in batches if len(b) >= self.dist.world_size]

    def padding_fraction(self, epoch: int = 0) -> float:
        return padding_fraction(self.epoch_batches(epoch), self.src_lengths, self.tgt_lengths)

    def epoch_source(self, epoch: int) -> Iterator[Batch]:
        """This process's batches of `epoch`, from progress.batch_in_epoch on.

        In memory, every process builds the same global batches and takes its share of
        each, so the global batch does not depend on the number of processes. Streamed,
        each process reads its own shards and makes batches of 1/N of the batch size.
        A resume re-reads the stream and skips the batches already trained on (exact,
        as the stream is a function of the shards, seed, epoch and rank).
        """
        skip, t = self.progress.batch_in_epoch, self.tcfg
        if self.data.shards is None:
            train = self.data.train
            for mine in map(self.dist.shard, self.epoch_batches(epoch)[skip:]):
                yield make_batch([train.src_ids[i] for i in mine], [train.tgt_ids[i] for i in mine])
            return
        world, sentences = self.dist.world_size, t.get("batch_sentences")
        self.stream_stats = StreamStats()
        stream = stream_batches(
            self.data.shards,
            self.data.src_tokenizer,
            self.data.tgt_tokenizer,
            rank=self.dist.rank,
            world_size=world,
            epoch=epoch,
            seed=t.seed,
            batch_tokens=max(1, t.batch_tokens // world),
            batch_sentences=max(1, sentences // world) if sentences else None,
            max_length=self.cfg.data.max_length,
            window=self.cfg.data.stream_window,
            stats=self.stream_stats,
        )
        for src, tgt in islice(stream, skip, None):
            yield make_batch(src, tgt)

    def _logits(self, batch: Batch, teacher_prob: float, generator) -> torch.Tensor:
        src, tgt_in = batch.src.to(self.device), batch.tgt_in.to(self.device)
        with autocast(self.device, self.tcfg.get("precision", "fp32")):
            return self.train_forward(src, batch.src_lengths, tgt_in, teacher_prob, generator)

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

    def _train_step(self, batches: list[Batch]) -> tuple[float | None, int]:
        """One update over `batches` (this process's share); returns the loss per token (None
        if the loss or gradient is NaN/Inf: no update) and the update's target tokens, both
        over all processes."""
        step, world = self.progress.step, self.dist.world_size
        teacher_prob = teacher_forcing_probability(self.tcfg.get("scheduled_sampling"), step)
        generator = step_generator(self.tcfg.seed, step) if teacher_prob < 1.0 else None
        self.optimizer.zero_grad(set_to_none=True)
        (tokens,) = self.dist.all_sum([sum(b.num_tokens for b in batches)])
        local = accumulate_gradients(
            batches,
            lambda batch: self._logits(batch, teacher_prob, generator),
            self.tcfg.label_smoothing,
            total_tokens=tokens / world,
            contexts=sync_gradients_on_last(self.train_forward, len(batches)),
            scale=self.scaler.scale,
        )
        loss, bad = self.dist.all_sum([local or 0.0, float(local is None)])
        if bad:
            return None, int(tokens)
        self.scaler.unscale_(self.optimizer)  # clip the true gradients (no-op unless fp16)
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.tcfg.clip_norm or float("inf")
        )
        self._warm_up(step)
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skips the update if the gradients overflowed
            self.scaler.update()
            if self.scaler.get_scale() < scale:  # fp16 overflow: scale lowered, no update
                log.info("step %d: fp16 gradient overflow, loss scale now %g", step, scale / 2)
                return loss / world, int(tokens)
        elif not torch.isfinite(norm):  # the gradients, hence norms, are the same everywhere
            return None, int(tokens)
        else:
            self.optimizer.step()
        self.progress.updates += 1
        if self.tcfg.clip_norm and float(norm) > self.tcfg.clip_norm:
            self.progress.clip_events += 1
        return loss / world, int(tokens)

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

    def _log_window(self, window: LogInterval, bar) -> None:
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
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if self.data.shards is not None:  # pairs this process has read in this epoch
            record["stream_pairs_read"] = self.stream_stats.read
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

    def _run_update(self, batches: list[Batch], window: LogInterval, bar) -> LogInterval:
        """One update, then logging, evaluation and checkpoints as they fall due."""
        t, p = self.tcfg, self.progress
        loss, tokens = self._train_step(batches)
        p.batch_in_epoch += len(batches)
        p.step += 1
        if loss is None:
            self._handle_bad_step()
        else:
            p.bad_steps = 0
            window.add(loss, tokens)
        bar.update(1)
        if p.step % t.log_every == 0 and window.updates:
            self._log_window(window, bar)
            window = LogInterval()
        if t.eval_every and p.step % t.eval_every == 0:
            self._after_eval(self.evaluate_everywhere(), update_schedule=True)
        save_due = self._agree_on_stop(self.periodic_save_due())
        if save_due and self.stop_reason is None:
            self.save_periodic()
        return window

    def _agree_on_stop(self, save_due: bool = False) -> bool:
        """Settle stop_reason (budget, signal, early stopping) and whether rank 0's periodic
        checkpoint is due on all processes at once; returns the latter."""
        self.stop_reason = self.stop_reason or self._budget_exhausted()
        stop, save = self.dist.any(self.stop_reason is not None, save_due and self.dist.is_main)
        if stop and self.stop_reason is None:
            self.stop_reason = "another process stopped"
        return save

    def train(self) -> dict[str, Any]:
        self.setup()
        self._install_signal_handlers()
        t, p = self.tcfg, self.progress
        self.model.train()
        self.updates_per_epoch = self._describe_epochs()
        bar = self.progress_bar(self.updates_per_epoch, "train")
        window = LogInterval()
        self._agree_on_stop()
        while self.stop_reason is None and p.epoch < t.max_epochs:
            source, fresh = self.epoch_source(p.epoch), p.batch_in_epoch == 0
            updates_before = p.updates + p.skipped_steps
            while self.stop_reason is None:
                batches = list(islice(source, self.accumulate))
                (epoch_over,) = self.dist.any(not batches)  # every process ends it together
                if epoch_over:
                    break
                window = self._run_update(batches, window, bar)
            if self.stop_reason is None:
                self._end_epoch(empty=fresh and p.updates + p.skipped_steps == updates_before)
        bar.close()
        return self._finish()

    def _describe_epochs(self) -> int | None:
        """Log the epoch's size; the updates per epoch (None when streaming: unknown)."""
        if self.data.shards is not None:
            check_shards_for_ranks(self.data.shards, self.dist.world_size)
            log.info(
                "streaming %d shard(s) over %d process(es)",
                len(self.data.shards),
                self.dist.world_size,
            )
            return None
        epoch_batches = self.epoch_batches(self.progress.epoch)
        updates = math.ceil(len(epoch_batches) / self.accumulate)
        log.info(
            "%d batches per epoch (%d updates), padding %.1f%%",
            len(epoch_batches),
            updates,
            100 * padding_fraction(epoch_batches, self.src_lengths, self.tgt_lengths),
        )
        return updates

    def _end_epoch(self, empty: bool) -> None:
        p = self.progress
        if empty:
            raise TrainingError(
                f"epoch {p.epoch} gave no training batch: every pair was empty or longer "
                f"than data.max_length={self.cfg.data.max_length}"
                + (f" ({self.stream_stats})" if self.data.shards is not None else "")
            )
        if self.data.shards is not None:
            log.info("epoch %d streamed (this process): %s", p.epoch, self.stream_stats)
        p.epoch += 1
        p.batch_in_epoch = 0

    def _average_last(self) -> None:
        """trainer.average_last=N: checkpoints/averaged.pt, the mean of the final weights and
        the N-1 newest periodic checkpoints before them. It usually translates better than
        any single one of them; its dev scores are logged."""
        wanted = self.tcfg.get("average_last") or 0
        if wanted < 2 or not self.dist.is_main:
            return
        final = self.progress.step
        earlier = [
            path for path in step_checkpoints(self.ckpt_dir) if checkpoint_step(path) < final
        ][: wanted - 1]
        if not earlier:
            log.warning("trainer.average_last=%d: no periodic checkpoint to average", wanted)
            return
        paths = [self.ckpt_dir / "last.pt", *earlier]
        payload = average_checkpoints(paths)
        save_checkpoint(self.ckpt_dir / "averaged.pt", payload)
        self.model.load_state_dict(payload["model"])  # training is over: score the average
        metrics = self.evaluate()
        self._log({"step": final, "averaged": [p.name for p in paths], **metrics})
        log.info(
            "averaged %s into %s: dev loss %.3f, ppl %.2f, BLEU %.2f",
            ", ".join(p.name for p in paths),
            self.ckpt_dir / "averaged.pt",
            metrics["dev_loss"],
            metrics["dev_ppl"],
            metrics["dev_bleu"],
        )

    def _finish(self) -> dict[str, Any]:
        t, p = self.tcfg, self.progress
        self.stop_reason = self.stop_reason or f"reached trainer.max_epochs={t.max_epochs}"
        log.info("stopping: %s", self.stop_reason)
        self.save("last.pt")
        if p.last_eval_step != p.step:
            self._after_eval(self.evaluate_everywhere(), update_schedule=False)
        if self.stop_reason.startswith("received"):
            log.warning("interrupted; resume with: trainer.resume=%s", self.ckpt_dir / "last.pt")
        else:
            self._average_last()
        return {
            "step": p.step,
            "epoch": p.epoch,
            "best_score": p.best_score,
            "stop_reason": self.stop_reason,
        }
