"""Gated cells: GRU (Cho et al. 2014) and LSTM (Hochreiter & Schmidhuber 1997)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seq2seq.cells.base import FusedCell


class GRUCell(FusedCell):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def _cell(self, x, state, w_ih, w_hh, b_ih, b_hh) -> tuple[Tensor, Tensor]:
        h = torch.gru_cell(x, state, w_ih, w_hh, b_ih, b_hh)
        return h, h

    vector_bias_on_cuda = True

    def _cell_from_input_gates(self, input_gates, state, w_hh, b_hh) -> tuple[Tensor, Tensor]:
        i_r, i_z, i_n = input_gates.chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(state, w_hh, b_hh).chunk(3, dim=1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        new = torch.tanh(i_n + reset * h_n)
        h = new + update * (state - new)
        return h, h


class LSTMCell(FusedCell):
    state_parts = 2

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float | None = None) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        if forget_bias is not None:
            # Gate order in torch is (input, forget, cell, output); the two biases add up.
            with torch.no_grad():
                for bias in (self.rnn.bias_ih_l0, self.rnn.bias_hh_l0):
                    bias[hidden_size : 2 * hidden_size].fill_(forget_bias / 2)

    def _cell(self, x, state, w_ih, w_hh, b_ih, b_hh) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = torch.lstm_cell(x, state, w_ih, w_hh, b_ih, b_hh)
        return h, (h, c)

    vector_bias_on_cuda = True

    def _cell_from_input_gates(self, input_gates, state, w_hh, b_hh):
        h, c = state
        i, f, g, o = (input_gates + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


def gru(input_size: int, hidden_size: int) -> GRUCell:
    """Factory for the `gru` cell."""
    return GRUCell(input_size, hidden_size)


def lstm(input_size: int, hidden_size: int, forget_bias: float | None = None) -> LSTMCell:
    """Factory for the `lstm` cell; `forget_bias` sets the forget-gate bias (e.g. 1.0)."""
    return LSTMCell(input_size, hidden_size, forget_bias=forget_bias)
