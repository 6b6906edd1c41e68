"""Sampling search for seq2seq: temperature, top-k and nucleus (top-p), seedable.

A `seq2seq.search` plugin: `seq2seq-translate --search topk_sample
--search-option temperature=0.7 --search-option top_p=0.9 --search-option seed=1`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seq2seq.nn.recurrent import map_state
from seq2seq.search import Hypothesis, decode_one_by_one, length_limits

__all__ = ["filter_logits", "topk_sample"]
__version__ = "0.1.0"


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set to -inf every logit outside the top k and outside the smallest set of mass top_p."""
    if top_k > 0 and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p (the best always stays).
        drop = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return logits


def topk_sample(
    model,
    src: Tensor,
    src_lengths: Tensor,
    *,
    max_length: int = 200,
    max_length_ratio: float = 2.0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    num_samples: int = 1,
) -> list[list[Hypothesis]]:
    """Ancestral sampling with temperature, top-k and nucleus (top-p) filtering; seedable.

    Draws `num_samples` translations per sentence, returned best first by their
    log-probability under the model (without temperature). `top_k=0` and
    `top_p=1.0` switch those filters off; `top_k=1` is greedy search. With a
    `seed`, the same input in the same batch gives the same samples.
    """
    if not temperature > 0:
        raise ValueError(f"topk_sample: temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"topk_sample: top_k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"topk_sample: top_p must be in (0, 1] (1 = off), got {top_p}")
    if num_samples < 1:
        raise ValueError(f"topk_sample: num_samples must be >= 1, got {num_samples}")
    device = src.device
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    batch = src.size(0)
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    if num_samples > 1:
        repeat = torch.arange(batch, device=device).repeat_interleave(num_samples)
        enc = enc.index_select(repeat)
        state = map_state(lambda s: s.index_select(0, repeat), state)
        src_lengths = src_lengths.repeat_interleave(num_samples)
    limits = length_limits(src_lengths, max_length, max_length_ratio).to(device)

    def draw(logp: Tensor) -> Tensor:
        probs = filter_logits(logp / temperature, top_k, top_p).softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    hyps = decode_one_by_one(model, enc, state, limits, draw)
    return [
        sorted(hyps[i * num_samples : (i + 1) * num_samples], key=lambda h: -h.score)
        for i in range(batch)
    ]
