"""Gradient flow through time: how ‖∂L/∂h_t‖ shrinks or grows as a cell is unrolled.

A loss on the last hidden state only (L = <w, h_T> with a fixed random w) is
backpropagated through T steps over random inputs. Vanishing gradients show as a
ratio r = ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ far below 1, exploding ones far above 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from seq2seq import registry
from seq2seq.nn.initialization import initialize
from seq2seq.nn.recurrent import first_tensor


@dataclass
class Setting:
    cell: str
    cell_options: dict[str, Any]
    init: str = "default"
    init_std: float = 1.0

    @property
    def cell_label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.cell_options.items())
        if self.cell == "elman" and set(self.cell_options) == {"activation"}:
            return f"elman {self.cell_options['activation']}"
        return f"{self.cell} {opts}" if opts else self.cell

    @property
    def init_label(self) -> str:
        return f"gaussian std={self.init_std:g}" if self.init == "gaussian" else self.init


def gradient_flow(
    cell: str | Any,
    cell_options: dict[str, Any] | None = None,
    init: str = "default",
    init_std: float = 1.0,
    steps: int = 50,
    input_size: int = 32,
    hidden_size: int = 64,
    batch_size: int = 8,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """‖∂L/∂h_t‖ for t = 1..steps (a [steps] tensor), with L = <w, h_T> summed over the batch.

    `cell` is a registered cell name or a factory. h_t is the cell's hidden state
    (the state itself, or its first tensor for (h, c) states). Inputs are N(0, 1).
    """
    factory = registry.load("seq2seq.cells", cell) if isinstance(cell, str) else cell
    torch.manual_seed(seed)
    module = factory(input_size, hidden_size, **dict(cell_options or {})).to(dtype)
    initialize(module, init, init_std)
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch_size, steps, input_size, generator=generator, dtype=dtype)
    w = torch.randn(hidden_size, generator=generator, dtype=dtype)
    state = module.initial_state(batch_size, dtype=dtype)
    hidden = []
    for t in range(steps):
        _, state = module(x[:, t], state)
        hidden.append(first_tensor(state))
    loss = (hidden[-1] @ w).sum()
    grads = torch.autograd.grad(loss, hidden, allow_unused=True)
    return torch.stack(
        [torch.zeros((), dtype=dtype) if g is None else g.detach().norm() for g in grads]
    ).double()
