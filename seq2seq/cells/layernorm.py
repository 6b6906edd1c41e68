"""Layer-normalised LSTM and GRU cells (Ba, Kiros & Hinton 2016), as in Sockeye and Marian.

The input projection W x and the recurrent projection U h are layer-normalised
separately (each over all its gate rows, with its own gain) before they are
added; the LSTM also normalises the cell before the output tanh:

    LSTM: i, f, g, o = split(LN_x(W x) + LN_h(U h))
          c' = σ(f) c + σ(i) tanh(g);   h' = σ(o) tanh(LN_c(c'))
    GRU:  r, z, n = split(LN_x(W x)),   r', z', n' = split(LN_h(U h))
          r = σ(r + r'),  z = σ(z + z'),  n = tanh(n + r n'),  h' = (1 − z) n + z h

The gate biases are the layer norms' biases: LN_x carries b (the LSTM's
`forget_bias` is set there); the GRU's LN_h also has one, since r gates U h + b_h
(as in torch.nn.GRU), while the LSTM's LN_h has a gain only (b would be counted twice).

Gate order follows torch (LSTM: input, forget, cell, output; GRU: reset, update,
new), weights are stacked `[k·H, ·]` so `model.init` treats them like the built-in
gated cells. States follow the built-ins: the GRU state is h, the LSTM state is
(h, c). These cells are step-only: the framework's step loop runs them over time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class _LayerNormGated(nn.Module):
    """Stacked input/recurrent weights for `gates` gates, each projection layer-normalised."""

    gates: int
    state_parts = 1

    recurrent_bias: bool

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.norm_ih = nn.LayerNorm(rows, eps=eps)
        self.norm_hh = nn.LayerNorm(rows, eps=eps, bias=self.recurrent_bias)
        bound = 1.0 / math.sqrt(hidden_size)  # torch's RNN initialisation
        for weight in (self.weight_ih, self.weight_hh):
            nn.init.uniform_(weight, -bound, bound)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        dtype = dtype or self.weight_hh.dtype
        device = device or self.weight_hh.device
        zeros = [
            torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
            for _ in range(self.state_parts)
        ]
        return zeros[0] if self.state_parts == 1 else tuple(zeros)

    def _projections(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return (
            self.norm_ih(nn.functional.linear(x, self.weight_ih)),
            self.norm_hh(nn.functional.linear(h, self.weight_hh)),
        )


class LayerNormLSTMCell(_LayerNormGated):
    gates = 4
    state_parts = 2
    recurrent_bias = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        forget_bias: float | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(input_size, hidden_size, eps)
        self.norm_c = nn.LayerNorm(hidden_size, eps=eps)
        if forget_bias is not None:
            with torch.no_grad():
                self.norm_ih.bias[hidden_size : 2 * hidden_size].fill_(forget_bias)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state
        wx, uh = self._projections(x, h)
        i, f, g, o = (wx + uh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.norm_c(c))
        return h, (h, c)


class LayerNormGRUCell(_LayerNormGated):
    gates = 3
    recurrent_bias = True

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        wx, uh = self._projections(x, state)
        x_r, x_z, x_n = wx.chunk(3, dim=-1)
        h_r, h_z, h_n = uh.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * state
        return h, h


def layernorm_lstm(
    input_size: int, hidden_size: int, forget_bias: float | None = None, eps: float = 1e-5
) -> LayerNormLSTMCell:
    """Factory for the `layernorm_lstm` cell: LSTM with layer normalisation (Ba et al. 2016)."""
    return LayerNormLSTMCell(input_size, hidden_size, forget_bias=forget_bias, eps=eps)


def layernorm_gru(input_size: int, hidden_size: int, eps: float = 1e-5) -> LayerNormGRUCell:
    """Factory for the `layernorm_gru` cell: GRU with layer normalisation (Ba et al. 2016)."""
    return LayerNormGRUCell(input_size, hidden_size, eps=eps)
