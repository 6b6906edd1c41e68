"""IndRNN: independently recurrent neurons (Li et al. 2018), a `seq2seq.cells` plugin.

    h_t = act(W x_t + u ⊙ h_{t-1} + b)

Each hidden unit only sees its own past (u is a vector, not a matrix), which
makes the recurrence cheap and lets ReLU units keep gradients over long spans.
Following the paper, |u| is constrained (clipped to `recurrent_max`) so that
ReLU activations cannot grow without bound.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["IndRNNCell", "indrnn"]
__version__ = "0.1.0"

ACTIVATIONS = ("relu", "tanh")


class IndRNNCell(nn.Module):
    """One IndRNN layer step: h_t = act(W x_t + u ⊙ h_{t-1} + b)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        activation: str = "relu",
        recurrent_max: float | None = 1.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"indrnn: activation must be one of {', '.join(ACTIVATIONS)}, got '{activation}'"
            )
        if recurrent_max is not None and recurrent_max <= 0:
            raise ValueError(f"indrnn: recurrent_max must be > 0 or null, got {recurrent_max}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.activation = activation
        # 0.0 means "no constraint" (a float keeps forward TorchScript-able).
        self.recurrent_max = float(recurrent_max or 0.0)
        self.input = nn.Linear(input_size, hidden_size)  # W and b
        self.recurrent = nn.Parameter(torch.empty(hidden_size))  # u
        with torch.no_grad():
            self.recurrent.uniform_(0.0, min(1.0, recurrent_max or 1.0))

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(
            batch_size,
            self.hidden_size,
            device=device if device is not None else self.recurrent.device,
            dtype=dtype if dtype is not None else self.recurrent.dtype,
        )

    def _u(self) -> Tensor:
        if self.recurrent_max > 0:
            return self.recurrent.clamp(-self.recurrent_max, self.recurrent_max)
        return self.recurrent

    def _act(self, z: Tensor) -> Tensor:
        return torch.relu(z) if self.activation == "relu" else torch.tanh(z)

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = self._act(self.input(x) + self._u() * state)
        return h, h

    def forward_sequence(
        self, x: Tensor, state: Tensor, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Whole sequence at once: W x for all steps in one matmul, then the cheap recurrence.

        Same numbers as the step loop (seq2seq.testing.check_cell verifies it):
        outputs are zero on padding and each row's state is the one after its last
        real step.
        """
        projected = self.input(x)  # [B, T, H]
        u = self._u()
        live_steps = None
        if lengths is not None:
            steps = torch.arange(x.size(1), device=x.device)
            live_steps = (steps.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)).unsqueeze(-1)
        outputs = []
        for t in range(x.size(1)):
            h = self._act(projected[:, t] + u * state)
            if live_steps is not None:
                live = live_steps[:, t]
                state = torch.where(live, h, state)
                h = h * live.to(h.dtype)
            else:
                state = h
            outputs.append(h)
        return torch.stack(outputs, 1), state

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, activation={self.activation}, "
            f"recurrent_max={self.recurrent_max or None}"
        )


def indrnn(
    input_size: int,
    hidden_size: int,
    activation: str = "relu",
    recurrent_max: float | None = 1.0,
) -> IndRNNCell:
    """IndRNN cell (Li et al. 2018): h = act(W x + u ⊙ h_prev + b), units recur independently.

    Options: activation ("relu" or "tanh"), recurrent_max (clip |u|; None: no clip).
    """
    return IndRNNCell(input_size, hidden_size, activation=activation, recurrent_max=recurrent_max)
