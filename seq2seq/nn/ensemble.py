"""Ensembles: several models decoding as one, through the search-facing model API.

`Ensemble(models)` offers `encode`, `init_state`, `decode_step` and `attention` like
`Seq2Seq`, so every search strategy (built-in or plugin) decodes an ensemble
unchanged. The next-token distribution is the mean of the members' probabilities
(computed in log space: logsumexp - log n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class EnsembleEncoding:
    """The members' encoder outputs; reordered together (beam search repeats/drops rows)."""

    members: list[Any]

    def index_select(self, index: Tensor) -> EnsembleEncoding:
        return EnsembleEncoding([enc.index_select(index) for enc in self.members])


class Ensemble(nn.Module):
    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        sizes = {_tgt_vocab_size(m) for m in models}
        if len(sizes) > 1:
            raise ValueError(
                f"ensemble members must share the target vocabulary; sizes differ: {sorted(sizes)}"
            )
        self.members = nn.ModuleList(models)

    @property
    def spec(self):
        """The first member's spec (architecture details of the others may differ)."""
        return self.members[0].spec

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleEncoding:
        return EnsembleEncoding([m.encode(src, src_lengths) for m in self.members])

    def init_state(self, enc: EnsembleEncoding) -> list[Any]:
        """One state per member; a list, so seq2seq.rnn.map_state reorders them all."""
        return [m.init_state(e) for m, e in zip(self.members, enc.members, strict=True)]

    def decode_step(
        self, tokens: Tensor, enc: EnsembleEncoding, state: list[Any]
    ) -> tuple[Tensor, list[Any]]:
        """log(mean_i p_i(next token)) [B, V] and the members' new states."""
        logps, states = [], []
        for model, member_enc, member_state in zip(self.members, enc.members, state, strict=True):
            logp, new_state = model.decode_step(tokens, member_enc, member_state)
            logps.append(logp)
            states.append(new_state)
        if len(logps) == 1:
            return logps[0], states
        mixed = torch.logsumexp(torch.stack(logps), dim=0) - math.log(len(logps))
        return mixed, states

    def attention(self, state: list[Any]) -> Tensor | None:
        """Mean attention of the members that have attention; None when none has."""
        weights = [
            w
            for w in (m.attention(s) for m, s in zip(self.members, state, strict=True))
            if w is not None
        ]
        if not weights:
            return None
        return torch.stack(weights).mean(dim=0)


def _tgt_vocab_size(model: nn.Module) -> int | None:
    spec = getattr(model, "spec", None)
    return getattr(spec, "tgt_vocab_size", None)
