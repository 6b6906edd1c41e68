"""Generation strategies (`seq2seq.search`).

A strategy is a callable `strategy(model, src, src_lengths, *, max_length, max_length_ratio,
**options) -> list[list[Hypothesis]]`: for each sentence, its hypotheses best first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    score: float  # log-probability (beam: length-normalised)


def length_limits(src_lengths: Tensor, max_length: int, max_length_ratio: float) -> Tensor:
    """Per-sentence cap on generated tokens: ratio × source length + 10, at most max_length."""
    limit = (src_lengths.float() * max_length_ratio).long() + 10
    return limit.clamp(max=max_length, min=1)


def decode_one_by_one(
    model, enc, state, limits: Tensor, pick: Callable[[Tensor], Tensor]
) -> list[Hypothesis]:
    """One token per step for every row until EOS or its length limit.

    `pick(logp [rows, V]) -> tokens [rows]` chooses each next token (argmax for
    greedy, a draw for sampling); the score is the chosen tokens' log-probability.
    PAD and BOS are never generated.
    """
    rows, device = limits.size(0), limits.device
    tokens = torch.full((rows,), BOS_ID, dtype=torch.long, device=device)
    scores = torch.zeros(rows, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    outputs = []
    for t in range(int(limits.max())):
        logp, state = model.decode_step(tokens, enc, state)
        logp[:, PAD_ID] = -float("inf")
        logp[:, BOS_ID] = -float("inf")  # never an output: BOS only starts the decoder
        tokens = pick(logp)
        picked = logp.gather(1, tokens.unsqueeze(1)).squeeze(1)
        scores += torch.where(finished, torch.zeros_like(picked), picked)
        tokens = tokens.masked_fill(finished, PAD_ID)
        outputs.append(tokens)
        finished |= (tokens == EOS_ID) | (t + 1 >= limits)
        if bool(finished.all()):
            break
    hyps = []
    for row, score in zip(torch.stack(outputs, 1).tolist(), scores.tolist(), strict=True):
        row = [tok for tok in row if tok != PAD_ID]
        if row and row[-1] == EOS_ID:
            row = row[:-1]
        hyps.append(Hypothesis(row, float(score)))
    return hyps


def generate(
    model, src: Tensor, src_lengths: Tensor, strategy: str = "greedy", **options
) -> list[list[Hypothesis]]:
    from seq2seq import registry

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
