"""Greedy search: the most probable token at every step, whole batch at once."""

from __future__ import annotations

import torch
from torch import Tensor

from ..tokenizers import BOS_ID, EOS_ID, PAD_ID
from . import Hypothesis, length_limits


def greedy_search(
    model, src: Tensor, src_lengths: Tensor, *, max_length: int = 200, max_length_ratio: float = 2.0
) -> list[list[Hypothesis]]:
    batch = src.size(0)
    enc = model.encode(src, src_lengths)
    state = model.decoder.init_state(enc)
    limits = length_limits(src_lengths, max_length, max_length_ratio).to(src.device)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    scores = torch.zeros(batch, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    outputs = []
    for t in range(int(limits.max())):
        logp, state = model.decode_step(tokens, enc, state)
        logp[:, PAD_ID] = -float("inf")
        logp[:, BOS_ID] = -float("inf")  # never an output: BOS only starts the decoder
        best, tokens = logp.max(dim=-1)
        scores += torch.where(finished, torch.zeros_like(best), best)
        tokens = tokens.masked_fill(finished, PAD_ID)
        outputs.append(tokens)
        finished |= (tokens == EOS_ID) | (t + 1 >= limits)
        if bool(finished.all()):
            break
    steps = torch.stack(outputs, 1).tolist()
    result = []
    for row, score in zip(steps, scores.tolist(), strict=True):
        hyp = [tok for tok in row if tok != PAD_ID]
        if hyp and hyp[-1] == EOS_ID:
            hyp = hyp[:-1]
        result.append([Hypothesis(hyp, score)])
    return result
