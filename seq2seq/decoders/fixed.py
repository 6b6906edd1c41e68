"""The seed's decoder (Cho et al. 2014): the sentence as one fixed vector c.

c initialises the decoder state through a learned bridge and is fed at every
step together with the previous target embedding; the output layer sees the
RNN state, the previous embedding and c.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.encoder import EncoderOutput
from seq2seq.nn.recurrent import RecurrentStack, replace_first


class FixedVectorDecoder(nn.Module):
    def __init__(
        self,
        *,
        embedding_size: int,
        encoder_size: int,
        hidden_size: int,
        cell,
        cell_options: dict | None = None,
        num_layers: int = 1,
        dropout: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.rnn = RecurrentStack(
            cell,
            embedding_size + encoder_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            cell_options=cell_options,
            fused=fused,
        )
        self.bridge = nn.Linear(encoder_size, hidden_size * num_layers)
        self.readout = nn.Linear(hidden_size + embedding_size + encoder_size, hidden_size)
        self.dropout = SequenceDropout(dropout)
        self.hidden_size = hidden_size
        self.output_size = hidden_size

    def init_state(self, enc: EncoderOutput):
        batch = enc.summary.size(0)
        start = torch.tanh(self.bridge(enc.summary)).split(self.hidden_size, dim=-1)
        state = self.rnn.initial_state(batch, device=enc.summary.device, dtype=enc.summary.dtype)
        return [[replace_first(layer[0], h)] for layer, h in zip(state, start, strict=True)]

    def _readout(self, h: Tensor, emb: Tensor, context: Tensor) -> Tensor:
        return self.dropout(torch.tanh(self.readout(torch.cat([h, emb, context], dim=-1))))

    def forward(self, emb: Tensor, enc: EncoderOutput, state) -> Tensor:
        context = enc.summary.unsqueeze(1).expand(-1, emb.size(1), -1)
        h, _ = self.rnn(torch.cat([emb, context], dim=-1), None, state)
        return self._readout(h, emb, context)

    def step(self, emb: Tensor, enc: EncoderOutput, state):
        h, state = self.rnn.step(torch.cat([emb, enc.summary], dim=-1), state)
        return self._readout(h, emb, enc.summary), state
