"""Shared machinery for the built-in cells, which wrap torch's fused RNN modules.

A built-in cell keeps its weights inside a one-layer `torch.nn.RNN/GRU/LSTM`, so
the per-step path (`torch.*_cell`) and the fused whole-sequence path use the very
same parameters and math.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = Tensor | tuple[Tensor, ...]


class FusedCell(nn.Module):
    """A cell whose `rnn` attribute is a one-layer, batch-first torch RNN module."""

    rnn: nn.RNNBase
    state_parts = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        dtype = dtype or self.rnn.weight_hh_l0.dtype
        device = device or self.rnn.weight_hh_l0.device
        zeros = [
            torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
            for _ in range(self.state_parts)
        ]
        return zeros[0] if self.state_parts == 1 else tuple(zeros)

    def _weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r = self.rnn
        return r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0

    def _cell(
        self, x: Tensor, state: State, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
    ) -> tuple[Tensor, State]:
        """One step given the weights: (output h, new state)."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self._cell(x, state, *self._weights())

    # Split input projection: when the first k input features of every step are known
    # in advance (a decoder's target embeddings), their share of W_ih x runs for all
    # steps in one matrix product; each step then multiplies only the other features.
    # Same math as `forward` on the concatenated input (tested). The other features'
    # weights are sliced once per sequence too: sliced at every step, each step's
    # backward would scatter its gradient into a zeroed copy of the whole W_ih (training
    # 6% slower on the reference model).

    def known_input(self, known: Tensor) -> tuple[Tensor, Tensor]:
        """known [..., k] → (its input projection plus b_ih [..., gates·H], the input
        weights of the remaining features [gates·H, I - k])."""
        w_ih, _, b_ih, _ = self._weights()
        k = known.size(-1)
        w_rest = w_ih[:, k:]
        device = w_rest.device.type
        if torch.is_autocast_enabled(device):
            # Cast once per sequence: autocast caches its casts of leaf weights only, and
            # this slice is not one, so every step would copy it again (bf16 training on
            # the reference model: 3% slower).
            w_rest = w_rest.to(torch.get_autocast_dtype(device))
        return F.linear(known, w_ih[:, :k], b_ih), w_rest

    def step_with_input_bias(
        self, rest: Tensor, state: State, bias: Tensor, w_rest: Tensor
    ) -> tuple[Tensor, State]:
        """One step whose input is [known; rest], with (bias, w_rest) = known_input(known)."""
        _, w_hh, _, b_hh = self._weights()
        if bias.is_cuda and self.vector_bias_on_cuda:
            return self._cell_from_input_gates(F.linear(rest, w_rest) + bias, state, w_hh, b_hh)
        return self._cell(rest, state, w_rest, w_hh, bias, b_hh)

    # CUDA's fused LSTM and GRU kernels accept only a vector bias, not the per-row bias of
    # the split input projection; cells with such kernels then take the input gates
    # (W_ih x + b_ih, already summed) through this plain gate math instead.
    vector_bias_on_cuda = False

    def _cell_from_input_gates(
        self, input_gates: Tensor, state: State, w_hh: Tensor, b_hh: Tensor
    ) -> tuple[Tensor, State]:
        raise NotImplementedError

    def forward_sequence(
        self, x: Tensor, state: State, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Whole-sequence fused path: outputs [B, T, H] and the state after each row's last step."""
        h0 = (
            tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state.unsqueeze(0)
        )
        if lengths is None:
            out, final = self.rnn(x, h0)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, final = self.rnn(packed, h0)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        if isinstance(final, tuple):
            return out, tuple(f.squeeze(0) for f in final)
        return out, final.squeeze(0)
