"""Sampling search: one ancestral sample per sentence, with temperature, top-k and top-p.

`--search sample --temperature 0.7 --top-p 0.9 --seed 1`. With a seed the draws come
from a private torch.Generator, so the same input in the same batch gives the same
output without touching the global RNG. `top_k=1` is greedy search.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seq2seq.search import Hypothesis, decode_one_by_one, length_limits


def check_sample_options(
    *, temperature: float, top_k: int, top_p: float, strategy: str = "sample", **_: Any
) -> None:
    """ValueError for settings that cannot sample (the command line checks them early).

    `strategy` names the strategy in the message (sampling plugins share this check).
    """
    if not temperature > 0:
        raise ValueError(f"{strategy}: temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"{strategy}: top_k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"{strategy}: top_p must be in (0, 1] (1 = off), got {top_p}")


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """-inf outside the top k tokens and outside the smallest set holding mass top_p."""
    if 0 < top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token once the mass before it reaches top_p (the best token always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return logits


def sample_search(
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
) -> list[list[Hypothesis]]:
    """Ancestral sampling with temperature, top-k and top-p (nucleus); seedable.

    One sample per sentence; its score is its log-probability under the model
    (without temperature or filtering), as greedy's is.

    Args:
        temperature: divide the logits by this before sampling (< 1: more conservative).
        top_k: sample among the k most probable tokens only (0 = off; 1 = greedy).
        top_p: nucleus sampling: among the smallest set of tokens holding this
            probability mass (1 = off).
        seed: seed of a private random generator: the same seed gives the same output.
    """
    check_sample_options(temperature=temperature, top_k=top_k, top_p=top_p)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=src.device)
        generator.manual_seed(seed)
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    limits = length_limits(src_lengths, max_length, max_length_ratio).to(src.device)

    def draw(logp: Tensor) -> Tensor:
        if top_k == 1:  # greedy, exactly (and without spending random numbers)
            return logp.argmax(dim=-1)
        probs = filter_logits(logp / temperature, top_k, top_p).softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return [[h] for h in decode_one_by_one(model, enc, state, limits, draw)]


sample_search.check_options = check_sample_options
