"""Vocabulary shortlists: decode over the target tokens a batch can plausibly need.

On a CPU the output layer dominates a decoding step: its weights (vocabulary × hidden,
8 MB for 8,000 × 256 floats) stream from memory at every step for every batch. As in
Marian's lexical shortlist, each batch instead decodes over a candidate set: the most
frequent target tokens, plus, for each token of its sources, the target tokens that
co-occur with it most (Dice coefficient over the training sentence pairs). The search
runs unchanged over the candidate set (its softmax is over the candidates only) and the
chosen tokens are mapped back to vocabulary ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seq2seq.search import Hypothesis
from seq2seq.translation.candidates import candidate_set

TOP_K = 50  # target tokens kept per source token
FREQUENT = 100  # most frequent target tokens, always candidates
MAX_PAIRS = 200_000  # sentence pairs the statistics are counted on (evenly spaced)
ROW_BIAS = "shortlist_bias"  # the encoder output's extra: [B, C] output bias, -inf if forbidden


@dataclass
class Shortlist:
    """`table` [source vocabulary, top_k]: each source token's likeliest target tokens
    (PAD-filled where it has fewer); `frequent` [n]: the most frequent target tokens."""

    table: Tensor
    frequent: Tensor

    def candidates(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """`candidate_set` of a batch of sources [B, S]: target ids [C], allowed [B, C]."""
        ids, allowed = candidate_set(self.table.numpy(), self.frequent.numpy(), src.cpu().numpy())
        return torch.from_numpy(ids), torch.from_numpy(allowed)

    def state(self) -> dict[str, Tensor]:
        """Plain tensors for a checkpoint or a safetensors file (int32: half the bytes)."""
        return {"table": self.table.int(), "frequent": self.frequent.int()}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Shortlist | None:
        """The shortlist `state()` saved; None for a model saved without one."""
        if state is None:
            return None
        table, frequent = (torch.as_tensor(state[key]).long() for key in ("table", "frequent"))
        return cls(table, frequent)


def learn_shortlist(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    src_vocab: int,
    top_k: int = TOP_K,
    frequent: int = FREQUENT,
) -> Shortlist:
    """Count which target tokens occur in the same sentence pairs as each source token,
    and keep each source token's `top_k` by Dice coefficient 2·c(s,t) / (c(s) + c(t))."""
    step = max(1, len(src_ids) // MAX_PAIRS)
    keys, src_seen, tgt_seen = [], [], []
    for src, tgt in zip(src_ids[::step], tgt_ids[::step], strict=True):
        s, t = np.unique(np.asarray(src, np.int64)), np.unique(np.asarray(tgt, np.int64))
        src_seen.append(s)
        tgt_seen.append(t)
        keys.append((s[:, None] * (1 << 32) + t[None, :]).ravel())
    pairs, together = np.unique(_joined(keys), return_counts=True)
    s_of, t_of = pairs >> 32, pairs & 0xFFFFFFFF
    s_count = np.bincount(_joined(src_seen), minlength=src_vocab)
    t_all = _joined(tgt_seen)
    t_count = np.bincount(t_all, minlength=int(t_all.max(initial=0)) + 1)
    dice = 2 * together / (s_count[s_of] + t_count[t_of])
    order = np.lexsort((-dice, s_of))  # by source token, best first
    s_sorted = s_of[order]
    rank = np.arange(len(order)) - np.searchsorted(s_sorted, s_sorted)
    kept = rank < top_k
    table = np.zeros((src_vocab, top_k), np.int64)  # PAD (0) where fewer were seen
    table[s_sorted[kept], rank[kept]] = t_of[order][kept]
    most = np.argsort(-t_count, kind="stable")[:frequent]
    return Shortlist(torch.from_numpy(table), torch.from_numpy(most[t_count[most] > 0]))


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


class Shortlisted(nn.Module):
    """A Seq2Seq seen through a candidate set `ids` [C]: `decode_step` takes and scores
    candidate positions (log-probabilities [B, C], -inf where `allowed` [B, C] forbids a
    sentence a candidate), everything else is the model's."""

    def __init__(self, model: nn.Module, ids: Tensor, allowed: Tensor) -> None:
        super().__init__()
        device = next(model.parameters()).device
        self.model, self.ids = model, ids.to(device)
        layer = model.output_layer
        weight = layer.weight() if callable(layer.weight) else layer.weight  # int8: packed
        weight = weight.dequantize() if weight.is_quantized else weight
        bias = layer.bias() if callable(layer.bias) else layer.bias
        self.weight = weight.index_select(0, self.ids)
        # The sentence's own output bias, -inf on what it may not produce: the output
        # product starts from it, so forbidding costs no extra pass over the logits.
        kept = torch.zeros(len(ids), dtype=weight.dtype, device=device)
        kept = kept if bias is None else bias.index_select(0, self.ids).to(weight.dtype)
        self.row_bias = kept.masked_fill(~allowed.to(device), -float("inf"))

    @property
    def spec(self):
        return self.model.spec

    def encode(self, src: Tensor, src_lengths: Tensor):
        enc = self.model.encode(src, src_lengths)
        enc.extras[ROW_BIAS] = self.row_bias  # per sentence: the search reorders it with enc
        return enc

    def init_state(self, enc):
        return self.model.init_state(enc)

    def attention(self, state) -> Tensor | None:
        return self.model.attention(state)

    def decode_step(self, tokens: Tensor, enc, state) -> tuple[Tensor, Any]:
        """tokens [B] (candidate positions) → log-probabilities [B, C] over the candidates."""
        features, state = self.model.step_features(self.ids[tokens], enc, state)
        logits = torch.addmm(enc.extras[ROW_BIAS], features, self.weight.t()).float()
        return torch.log_softmax(logits, dim=-1), state


def shortlisted(model: nn.Module, ids: Tensor, allowed: Tensor) -> nn.Module:
    """`model` (one Seq2Seq or an Ensemble of them) decoding over the candidates `ids`."""
    members = getattr(model, "members", None)
    if members is None:
        return Shortlisted(model, ids, allowed)
    return type(model)([Shortlisted(member, ids, allowed) for member in members])


def to_vocabulary(hyps: list[list[Hypothesis]], ids: Tensor) -> list[list[Hypothesis]]:
    """Hypotheses over candidate positions, as vocabulary ids."""
    table = ids.tolist()
    return [[Hypothesis([table[t] for t in h.tokens], h.score) for h in hs] for hs in hyps]
