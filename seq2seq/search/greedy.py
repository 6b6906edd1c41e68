"""Greedy search: the most probable token at every step, whole batch at once."""

from __future__ import annotations

from torch import Tensor

from seq2seq.search import Hypothesis, decode_one_by_one, length_limits


def greedy_search(
    model, src: Tensor, src_lengths: Tensor, *, max_length: int = 200, max_length_ratio: float = 2.0
) -> list[list[Hypothesis]]:
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    limits = length_limits(src_lengths, max_length, max_length_ratio).to(src.device)
    hyps = decode_one_by_one(model, enc, state, limits, lambda logp: logp.argmax(dim=-1))
    return [[h] for h in hyps]
