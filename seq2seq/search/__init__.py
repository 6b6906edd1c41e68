"""Generation strategies (`seq2seq.search`).

A strategy is a callable `strategy(model, src, src_lengths, *, max_length, max_length_ratio,
**options) -> list[list[Hypothesis]]`: for each sentence, its hypotheses best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    score: float  # log-probability (beam: length-normalised)


def length_limits(src_lengths: Tensor, max_length: int, max_length_ratio: float) -> Tensor:
    """Per-sentence cap on generated tokens: ratio × source length + 10, at most max_length."""
    limit = (src_lengths.float() * max_length_ratio).long() + 10
    return limit.clamp(max=max_length, min=1)


def generate(
    model, src: Tensor, src_lengths: Tensor, strategy: str = "greedy", **options
) -> list[list[Hypothesis]]:
    from .. import registry

    search = registry.load("seq2seq.search", strategy)
    # Every strategy takes the length limits (the contract); the rest are its own options.
    limits = {key: options[key] for key in ("max_length", "max_length_ratio") if key in options}
    own = {key: value for key, value in options.items() if key not in limits}
    registry.validate_options(
        "search",
        strategy,
        search,
        own,
        fixed=(model, src, src_lengths),
        framework=limits,
        source="--search-option",
    )
    with torch.inference_mode():
        return search(model, src, src_lengths, **options)
