"""Dropout over sequences: standard, or variational (one mask for every time step).

Variational dropout (Gal & Ghahramani 2016) drops the same units at every step of
a sentence. Whole sequences [B, T, D] get a fresh [B, 1, D] mask per call; a
step-by-step loop keeps one [B, D] mask from `reset()` to the next.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LEVELS = 1 << 16  # a unit's keep test reads 16 random bits: p in steps of 1/65,536


def keep_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """1 / (1 − p') where a unit is kept, else 0, in `like`'s dtype and device; on a CPU
    p' is p to the nearest 1/65,536 (0.2 → 0.199997), and the scale keeps the expectation
    exact.

    On a CPU torch draws random numbers one at a time (`bernoulli_`, hence `F.dropout`,
    about 8 ns a unit); one 64-bit draw here serves four units' 16-bit tests.
    """
    if like.device.type != "cpu":
        keep = 1.0 - p
        return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep) / keep
    units = math.prod(shape)
    dropped = round(p * LEVELS)
    if dropped >= LEVELS:
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    draws = torch.empty((units + 3) // 4, dtype=torch.int64, device=like.device)
    bits = draws.random_(-(1 << 63), None).view(torch.int16)[:units].view(shape)
    return (bits >= dropped - LEVELS // 2).to(like.dtype).mul_(LEVELS / (LEVELS - dropped))


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout of x in training: torch's fused kernel on accelerators, the mask
    of `keep_mask` on a CPU."""
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * keep_mask(tuple(x.shape), p, x)


class SequenceDropout(nn.Module):
    def __init__(self, p: float, variational: bool = False) -> None:
        super().__init__()
        self.p = p
        self.variational = variational
        self._step_mask: Tensor | None = None

    def _active(self) -> bool:
        return self.training and self.p > 0

    def _mask(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return keep_mask(shape, self.p, like)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, D] (or [B, D] without a time axis)."""
        if not self._active():
            return x
        if not self.variational or x.dim() < 3:
            return dropout(x, self.p)
        return x * self._mask((x.size(0), 1, x.size(-1)), x)

    def reset(self) -> None:
        """Start a new sequence: the next `step` draws a new variational mask."""
        self._step_mask = None

    def step(self, x: Tensor) -> Tensor:
        """x [B, D] at one time step of a sequence."""
        if not self._active():
            return x
        if not self.variational:
            return dropout(x, self.p)
        if self._step_mask is None or self._step_mask.shape != x.shape:
            self._step_mask = self._mask(tuple(x.shape), x)
        return x * self._step_mask

    def extra_repr(self) -> str:
        return f"p={self.p}, variational={self.variational}"
