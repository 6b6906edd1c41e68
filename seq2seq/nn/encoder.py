"""The encoder: embeddings → recurrent stack → per-token states and one sentence vector."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.recurrent import RecurrentStack, first_tensor


@dataclass
class EncoderOutput:
    states: Tensor  # [B, S, D] top-layer outputs, zero on padding
    mask: Tensor  # [B, S] True on real tokens
    summary: Tensor  # [B, D] the whole sentence as one fixed vector
    lengths: Tensor  # [B]
    # [B, D] the final cell memory beside the hidden state (an LSTM's c), or None for cells
    # whose state is the hidden state alone; a decoder may initialise its own from it.
    memory: Tensor | None = None
    # Per-sentence tensors a decoder derives once (e.g. projected attention keys), batch first.
    extras: dict[str, Tensor] = field(default_factory=dict)

    def index_select(self, index: Tensor) -> EncoderOutput:
        """Reorder, repeat or drop sentences (beam search)."""
        return EncoderOutput(
            self.states.index_select(0, index),
            self.mask.index_select(0, index),
            self.summary.index_select(0, index),
            self.lengths.index_select(0, index.to(self.lengths.device)),
            None if self.memory is None else self.memory.index_select(0, index),
            {key: value.index_select(0, index) for key, value in self.extras.items()},
        )


class Encoder(nn.Module):
    def __init__(
        self,
        cell_factory,
        embedding: nn.Embedding,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        cell_options: dict | None = None,
        fused: bool = True,
        embedding_dropout: float | None = None,
        variational_dropout: bool = False,
        output_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        if embedding_dropout is None:
            embedding_dropout = dropout
        self.embedding_dropout = SequenceDropout(embedding_dropout, variational_dropout)
        self.dropout = SequenceDropout(
            dropout if output_dropout is None else output_dropout, variational_dropout
        )
        self.rnn = RecurrentStack(
            cell_factory,
            embedding.embedding_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            cell_options=cell_options,
            fused=fused,
        )
        self.output_size = self.rnn.output_size

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        x = self.embedding_dropout(self.embedding(src))
        states, finals = self.rnn(x, lengths)
        # The sentence vector: the top layer's final hidden state of each direction.
        summary = torch.cat([first_tensor(s) for s in finals[-1]], dim=-1)
        memory = final_memory(finals[-1])
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < lengths.to(
            src.device
        ).unsqueeze(1)
        return EncoderOutput(self.dropout(states), mask, summary, lengths, memory)


def final_memory(directions: list) -> Tensor | None:
    """Each direction's final cell memory (the second state tensor, an LSTM's c), joined
    like the summary; None where a cell keeps no second tensor of the hidden state's shape."""
    parts = []
    for state in directions:
        second = state[1] if isinstance(state, tuple | list) and len(state) > 1 else None
        if not isinstance(second, Tensor) or second.shape != first_tensor(state).shape:
            return None
        parts.append(second)
    return torch.cat(parts, dim=-1)
