"""One translation update: its loss and gradients, accumulated over batches, and the
optimizer step that follows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

import torch

from seq2seq.data.batching import Batch
from seq2seq.hardware import autocast
from seq2seq.training.distributed import sync_gradients_on_last
from seq2seq.training.reproducibility import step_generator
from seq2seq.training.scheduled_sampling import teacher_forcing_probability

log = logging.getLogger(__name__)


def accumulate_gradients(
    batches: list[Batch],
    loss_of: Callable[[Batch], torch.Tensor],
    total_tokens: float | None = None,
    contexts: Iterable[AbstractContextManager] | None = None,
    scale: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float | None:
    """Backpropagate one update's loss: `loss_of(batch)` summed over every target token
    of `batches`, divided by their total, so the gradients equal those of one batch
    holding them all.

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
            loss = loss_of(batch) / total
            finite = finite and bool(torch.isfinite(loss))
            if loss.requires_grad:
                (scale(loss) if scale else loss).backward()
        value += float(loss.detach())
    return value if finite else None


class UpdateStep:
    """One optimizer update of a translation model: forward and backward over the
    update's batches, then loss unscaling (fp16), clipping, the LR of the step and the
    optimizer step. Under torchrun the processes agree on every decision."""

    def __init__(
        self, model, train_forward, optimizer, scaler, schedule, dist, tcfg, device, precision
    ):
        """`precision`: fp32, bf16 or fp16, as resolved for this machine (never auto)."""
        self.model, self.train_forward, self.optimizer = model, train_forward, optimizer
        self.scaler, self.schedule, self.dist = scaler, schedule, dist
        self.tcfg, self.device, self.precision = tcfg, device, precision
        self.grad_norm: float | None = None  # of the latest update (None: none computed)
        self.clipped = False  # whether the latest update's gradient was clipped

    def __call__(
        self, batches: list[Batch], step: int, budget_used: Callable[[], float]
    ) -> tuple[float | None, int, bool, bool]:
        """Update `step` (0-based) over `batches` (this process's share). Returns the loss
        per token (None if the loss or gradient is NaN/Inf: no update) and the update's
        target tokens, both over all processes; whether the weights changed; whether the
        gradient was clipped."""
        world, t = self.dist.world_size, self.tcfg
        teacher_prob = teacher_forcing_probability(t.scheduled_sampling, step)
        generator = step_generator(t.seed, step) if teacher_prob < 1.0 else None
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_norm, self.clipped = None, False
        (tokens,) = self.dist.all_sum([sum(b.num_tokens for b in batches)])
        local = accumulate_gradients(
            batches,
            lambda batch: self._loss(batch, teacher_prob, generator),
            total_tokens=tokens / world,
            contexts=sync_gradients_on_last(self.train_forward, len(batches)),
            scale=self.scaler.scale,
        )
        loss, bad = self.dist.all_sum([local or 0.0, float(local is None)])
        if bad:
            return None, int(tokens), False, False
        self.scaler.unscale_(self.optimizer)  # clip the true gradients (no-op unless fp16)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_norm or float("inf"))
        self.grad_norm = float(norm) if torch.isfinite(norm) else None
        self.schedule.before_update(step, budget_used)
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skips the update if the gradients overflowed
            self.scaler.update()
            if self.scaler.get_scale() < scale:  # fp16 overflow: scale lowered, no update
                log.info("step %d: fp16 gradient overflow, loss scale now %g", step, scale / 2)
                return loss / world, int(tokens), False, False
        elif not torch.isfinite(norm):  # the gradients, hence norms, are the same everywhere
            return None, int(tokens), False, False
        else:
            self.optimizer.step()
        self.clipped = bool(t.clip_norm) and float(norm) > t.clip_norm
        return loss / world, int(tokens), True, self.clipped

    def _loss(self, batch: Batch, teacher_prob: float, generator) -> torch.Tensor:
        """The summed loss of the teacher-forced (or scheduled-sampling) decoder."""
        src, tgt_in = batch.src.to(self.device), batch.tgt_in.to(self.device)
        tgt_out = batch.tgt_out.to(self.device)
        with autocast(self.device, self.precision):
            return self.train_forward(
                src,
                batch.src_lengths,
                tgt_in,
                tgt_out,
                self.tcfg.label_smoothing,
                teacher_prob,
                generator,
            )
