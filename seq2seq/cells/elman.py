"""Elman cell: h_t = f(W_xh x_t + W_hh h_{t-1} + b)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seq2seq.cells.base import FusedCell

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class ElmanCell(FusedCell):
    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh") -> None:
        super().__init__(input_size, hidden_size)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"elman: unknown activation '{activation}'; choose one of {sorted(ACTIVATIONS)}"
            )
        self.activation = activation
        # torch.nn.RNN has no sigmoid mode; its tanh weights serve, the math is done per step.
        torch_mode = activation if activation in ("tanh", "relu") else "tanh"
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=torch_mode, batch_first=True)
        if activation == "sigmoid":
            self.forward_sequence = None  # no fused kernel computes a sigmoid RNN

    def _cell(self, x, state, w_ih, w_hh, b_ih, b_hh) -> tuple[Tensor, Tensor]:
        if self.activation == "tanh":
            h = torch.rnn_tanh_cell(x, state, w_ih, w_hh, b_ih, b_hh)
        elif self.activation == "relu":
            h = torch.rnn_relu_cell(x, state, w_ih, w_hh, b_ih, b_hh)
        else:
            h = torch.sigmoid(
                nn.functional.linear(x, w_ih, b_ih) + nn.functional.linear(state, w_hh, b_hh)
            )
        return h, h


def elman(input_size: int, hidden_size: int, activation: str = "tanh") -> ElmanCell:
    """Factory for the `elman` cell (activation: tanh, relu or sigmoid)."""
    return ElmanCell(input_size, hidden_size, activation=activation)
