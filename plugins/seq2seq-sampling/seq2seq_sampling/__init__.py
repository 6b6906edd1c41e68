"""Sampling search for seq2seq: temperature, top-k and nucleus (top-p), seedable.

A `seq2seq.search` plugin: `seq2seq-translate --search topk_sample --temperature 0.7
--top-p 0.9 --seed 1 --num-samples 3` (the flags come from `topk_sample`'s signature).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seq2seq.nn.recurrent import map_state
from seq2seq.search import Hypothesis, decode_one_by_one, length_limits
from seq2seq.search.sample import check_sample_options, filter_logits

__all__ = ["filter_logits", "topk_sample"]
__version__ = "0.1.0"


def check_topk_sample_options(*, num_samples: int, **options: Any) -> None:
    """ValueError for settings topk_sample cannot use (seq2seq-translate checks them early)."""
    check_sample_options(strategy="topk_sample", **options)
    if num_samples < 1:
        raise ValueError(f"topk_sample: num_samples must be >= 1, got {num_samples}")


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

    Args:
        temperature: divide the logits by this before sampling (< 1: more conservative).
        top_k: sample among the k most probable tokens only (0 = off).
        top_p: nucleus sampling: among the smallest set of tokens holding this
            probability mass (1 = off).
        seed: seed of a private random generator: the same seed gives the same output.
        num_samples: translations drawn per sentence, returned best first.
    """
    check_topk_sample_options(
        temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples
    )
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


topk_sample.check_options = check_topk_sample_options
