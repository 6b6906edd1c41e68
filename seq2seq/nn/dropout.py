"""Dropout over sequences: standard, or variational (one mask for every time step).

Variational dropout (Gal & Ghahramani 2016) drops the same units at every step of
a sentence. Whole sequences [B, T, D] get a fresh [B, 1, D] mask per call; a
step-by-step loop keeps one [B, D] mask from `reset()` to the next.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class SequenceDropout(nn.Module):
    def __init__(self, p: float, variational: bool = False) -> None:
        super().__init__()
        self.p = p
        self.variational = variational
        self._step_mask: Tensor | None = None

    def _active(self) -> bool:
        return self.training and self.p > 0

    def _mask(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        keep = 1.0 - self.p
        return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep) / keep

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, D] (or [B, D] without a time axis)."""
        if not self._active():
            return x
        if not self.variational or x.dim() < 3:
            return F.dropout(x, self.p, True)
        return x * self._mask((x.size(0), 1, x.size(-1)), x)

    def reset(self) -> None:
        """Start a new sequence: the next `step` draws a new variational mask."""
        self._step_mask = None

    def step(self, x: Tensor) -> Tensor:
        """x [B, D] at one time step of a sequence."""
        if not self._active():
            return x
        if not self.variational:
            return F.dropout(x, self.p, True)
        if self._step_mask is None or self._step_mask.shape != x.shape:
            self._step_mask = self._mask(tuple(x.shape), x)
        return x * self._step_mask

    def extra_repr(self) -> str:
        return f"p={self.p}, variational={self.variational}"
