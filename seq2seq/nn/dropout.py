"""Dropout over sequences: standard, or variational (one mask for every time step).

Variational dropout (Gal & Ghahramani 2016) drops the same units at every step of
a sentence. Whole sequences [B, T, D] get a fresh [B, 1, D] mask per call; a
step-by-step loop keeps one [B, D] mask from `reset()` to the next.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def keep_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """1 / (1 - p) where a unit is kept (probability 1 - p), else 0, in `like`'s dtype.

    Drawn as uniform floats against p: on CPUs torch's `bernoulli_` (hence `F.dropout`)
    draws at about half the speed of `rand`, and the decoder's dropout runs at every step.
    """
    uniform = torch.rand(shape, dtype=torch.float32, device=like.device)
    return (uniform >= p).to(like.dtype) * (1.0 / (1.0 - p))


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout of x (training): `F.dropout`'s fused kernel on accelerators,
    the faster mask of `keep_mask` on CPUs."""
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
