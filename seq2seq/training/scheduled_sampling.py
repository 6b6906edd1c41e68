"""Scheduled sampling (Bengio et al. 2015): feed the decoder its own predictions in training.

`trainer.scheduled_sampling` gives the teacher-forcing probability ε_i for update i
(`teacher_forcing_probability`). While ε < 1 the training forward runs token by
token (`scheduled_sampling_logits`): at each step after the first, each sentence
gets the gold previous token with probability ε and the model's own prediction
(argmax of the previous step's logits, detached) with probability 1 − ε.

Schedules, with k > 0 counted in updates and the result never below `min_teacher`:

- ``none``: ε = 1 (plain teacher forcing);
- ``linear``: ε = 1 − i / k (reaches 0 at update k);
- ``exponential``: ε = exp(−i / k) (Bengio's k^i with base exp(−1/k); 1/e at update k);
- ``inverse_sigmoid``: ε = k / (k + exp(i / k)) (Bengio's form, k ≥ 1; k/(k+1) at update 0,
  1/2 at update k·ln k).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq.nn.output_loss import output_layer_loss, token_loss
from seq2seq.tokenizers import PAD_ID

SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")


def _option(cfg: Any, key: str, default: Any) -> Any:
    value = None if cfg is None else cfg.get(key, default)
    return default if value is None else value


def validate_schedule(cfg: Any) -> None:
    """Raise ValueError naming the `trainer.scheduled_sampling` key that is wrong."""
    schedule = _option(cfg, "schedule", "none")
    if schedule not in SCHEDULES:
        raise ValueError(
            f"trainer.scheduled_sampling.schedule: unknown schedule '{schedule}'; "
            f"choose one of {', '.join(SCHEDULES)}"
        )
    if schedule == "none":
        return
    k = _option(cfg, "k", None)
    if k is None or not k > 0 or (schedule == "inverse_sigmoid" and k < 1):
        least = "1" if schedule == "inverse_sigmoid" else "0 (exclusive)"
        raise ValueError(
            f"trainer.scheduled_sampling.k must be a number of updates >= {least} for "
            f"schedule={schedule}, got {k!r}"
        )
    min_teacher = _option(cfg, "min_teacher", 0.0)
    if not 0.0 <= min_teacher <= 1.0:
        raise ValueError(
            f"trainer.scheduled_sampling.min_teacher must be in [0, 1], got {min_teacher!r}"
        )


def teacher_forcing_probability(cfg: Any, step: int) -> float:
    """ε for update `step` (0-based) under `cfg` (the trainer.scheduled_sampling block)."""
    validate_schedule(cfg)
    schedule = _option(cfg, "schedule", "none")
    if schedule == "none":
        return 1.0
    k = float(cfg["k"])
    if schedule == "linear":
        eps = 1.0 - step / k
    elif schedule == "exponential":
        eps = math.exp(-step / k)
    else:
        eps = k / (k + math.exp(min(step / k, 700.0)))
    return float(min(1.0, max(_option(cfg, "min_teacher", 0.0), eps)))


def scheduled_sampling_logits(
    model: nn.Module,
    src: Tensor,
    src_lengths: Tensor,
    tgt_in: Tensor,
    teacher_prob: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Logits [B, T, V] with each decoder input after the first drawn from gold or the model.

    `tgt_in` [B, T] is the gold input (BOS-prefixed). At step t ≥ 1, each row whose
    gold token is not padding takes the argmax of step t−1's logits with probability
    1 − `teacher_prob` (coin flips from `generator`, a CPU generator). With
    teacher_prob = 1 this computes the teacher-forced forward, one step at a time.
    """
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    dropout = _step_dropout(model.embedding_dropout)
    tokens = tgt_in[:, 0]
    outputs: list[Tensor] = []
    for t in range(tgt_in.size(1)):
        if t > 0:
            tokens = _mix(tgt_in[:, t], outputs[-1], teacher_prob, generator)
        emb = dropout(model.tgt_embedding(tokens))
        features, state = model.decoder.step(emb, enc, state)
        outputs.append(model.output_layer(features))
    return torch.stack(outputs, dim=1)


def _step_dropout(dropout: nn.Module):
    """The per-step form of the embedding dropout: a variational dropout (one mask per
    sentence) offers `reset()` and `step(x)`; a plain dropout is called as it is."""
    if callable(getattr(dropout, "step", None)):
        if callable(getattr(dropout, "reset", None)):
            dropout.reset()
        return dropout.step
    return dropout


def _mix(
    gold: Tensor, previous_logits: Tensor, teacher_prob: float, generator: torch.Generator | None
) -> Tensor:
    """Per row: the gold token with probability teacher_prob, else the previous argmax."""
    if teacher_prob >= 1.0:
        return gold
    coins = torch.rand(gold.size(0), generator=generator).to(gold.device)
    use_model = (coins >= teacher_prob) & (gold != PAD_ID)
    predicted = previous_logits.detach().argmax(dim=-1)
    return torch.where(use_model, predicted, gold)


class TrainingForward(nn.Module):
    """The training loss as one module call: teacher forcing (teacher_prob 1, the fused
    path) or scheduled sampling. DistributedDataParallel syncs gradients only for
    work done inside the call of the module it wraps, so both paths must go through
    one `forward`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor,
        label_smoothing: float = 0.0,
        teacher_prob: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The cross-entropy summed over the non-padding tokens of tgt_out [B, T]."""
        if teacher_prob >= 1.0:
            features = self.model.features(src, src_lengths, tgt_in)
            return output_layer_loss(features, self.model.output_layer, tgt_out, label_smoothing)
        logits = scheduled_sampling_logits(
            self.model, src, src_lengths, tgt_in, teacher_prob, generator
        )
        return token_loss(logits, tgt_out, label_smoothing)
