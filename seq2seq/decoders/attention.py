"""Attention decoders: Bahdanau (additive/MLP) and Luong (dot, general) scoring.

Both follow the structure of OpenNMT-py and JoeyNMT: the RNN reads the previous
target embedding (and, with input feeding, the previous attentional vector), its
new state queries the encoder states, and the attentional vector
tanh(W [context; h]) (or OpenNMT-py's W [context; h] + b: `attention_output`) is the
decoder's output feature.

Without input feeding, nothing inside the RNN depends on attention, so teacher
forcing runs the RNN over the whole sequence in one fused call and attends for
all steps in one batched product (tested equal to the step path).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.encoder import EncoderOutput
from seq2seq.nn.recurrent import RecurrentStack, replace_first

SCORES = ("mlp", "dot", "general")
BRIDGES = ("zero", "last", "learned", "learned_full")
ATTENTION_OUTPUTS = ("tanh", "linear")


class Attention(nn.Module):
    """score(query, key) over the source; keys are projected once per sentence (`prepare`)."""

    def __init__(self, score: str, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"attention score must be one of {', '.join(SCORES)}; got '{score}'")
        if score == "dot" and query_size != key_size:
            raise ValueError(
                f"dot attention needs the decoder size ({query_size}) to equal the encoder "
                f"output size ({key_size}); use score 'general' or 'mlp'"
            )
        self.score = score
        if score == "mlp":
            self.key_proj = nn.Linear(key_size, attention_size, bias=False)
            self.query_proj = nn.Linear(query_size, attention_size)
            self.v = nn.Linear(attention_size, 1, bias=False)
        elif score == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def prepare(self, states: Tensor) -> Tensor:
        """Keys [B, S, K'] from the encoder states; computed once, reused at every step
        (for `mlp`, doubled: see `forward`)."""
        if self.score == "dot":
            return states
        keys = self.key_proj(states)
        return 2 * keys if self.score == "mlp" else keys

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """query [B, T, Q] → context [B, T, D], weights [B, T, S] (zero on padding)."""
        if self.score == "mlp":
            # v·tanh(z) = 2 v·σ(2z) − Σv, and the softmax ignores the constant: on a CPU
            # σ costs a third of tanh over this [B, T, S, A] tensor, the step's largest.
            doubled = keys.unsqueeze(1) + 2 * self.query_proj(query).unsqueeze(2)
            scores = 2 * self.v(doubled.sigmoid_()).squeeze(-1)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))
        scores = scores.masked_fill(~mask.unsqueeze(1), -float("inf"))
        # In float32 even under bf16 autocast: the weights are what users see (alignment,
        # attention plots), and bf16's 8 bits leave rows summing to 1 only within 1e-3.
        weights = torch.softmax(scores.float(), dim=-1)
        return torch.bmm(weights.to(values.dtype), values), weights


class AttentionDecoder(nn.Module):
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
        score: str = "mlp",
        input_feed: bool = True,
        bridge: str = "learned",
        attention_size: int | None = None,
        variational_dropout: bool = False,
        attention_output: str = "tanh",
    ) -> None:
        super().__init__()
        if bridge not in BRIDGES:
            raise ValueError(f"decoder bridge must be one of {', '.join(BRIDGES)}; got '{bridge}'")
        if attention_output not in ATTENTION_OUTPUTS:
            raise ValueError(
                f"decoder attention_output must be one of {', '.join(ATTENTION_OUTPUTS)}; "
                f"got '{attention_output}'"
            )
        if bridge == "last" and encoder_size != hidden_size:
            raise ValueError(
                f"bridge 'last' copies the encoder's final state ({encoder_size} wide) into the "
                f"decoder ({hidden_size} wide): the sizes must match; use bridge 'learned'"
            )
        self.input_feed = input_feed
        self.bridge_kind = bridge
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        self.rnn = RecurrentStack(
            cell,
            embedding_size + (hidden_size if input_feed else 0),
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            cell_options=cell_options,
            fused=fused,
        )
        if bridge in ("learned", "learned_full"):
            self.bridge = nn.Linear(encoder_size, hidden_size * num_layers)
        if bridge == "learned_full":
            self.memory_bridge = nn.Linear(encoder_size, hidden_size * num_layers)
        self.attention = Attention(score, hidden_size, encoder_size, attention_size or hidden_size)
        # The attentional vector: tanh(W [context; h]) as in Luong et al., or
        # W [context; h] + b, as OpenNMT-py's MLP attention has it.
        self.output_tanh = attention_output == "tanh"
        self.combine = nn.Linear(encoder_size + hidden_size, hidden_size, bias=not self.output_tanh)
        self.dropout = SequenceDropout(dropout, variational_dropout)

    # -- state: [rnn state per layer, attentional vector [B, H], attention weights [B, S]]

    def init_state(self, enc: EncoderOutput):
        self.dropout.reset()
        if "keys" not in enc.extras:
            enc.extras["keys"] = self.attention.prepare(enc.states)
        batch, device, dtype = enc.states.size(0), enc.states.device, enc.states.dtype
        state = self.rnn.initial_state(batch, device=device, dtype=dtype)
        if self.bridge_kind == "learned":
            starts = torch.tanh(self.bridge(enc.summary)).split(self.hidden_size, dim=-1)
        elif self.bridge_kind == "learned_full":  # OpenNMT-py's: ReLU, and c as well
            starts = torch.relu(self.bridge(enc.summary)).split(self.hidden_size, dim=-1)
        elif self.bridge_kind == "last":
            starts = [enc.summary] * self.num_layers
        else:
            starts = None
        if starts is not None:
            state = [[replace_first(layer[0], h)] for layer, h in zip(state, starts, strict=True)]
        if self.bridge_kind == "learned_full" and enc.memory is not None:
            # The decoder's cell is the encoder's, so its state is also (h, c, ...).
            memories = torch.relu(self.memory_bridge(enc.memory)).split(self.hidden_size, dim=-1)
            state = [
                [(layer[0][0], c, *layer[0][2:])] for layer, c in zip(state, memories, strict=True)
            ]
        feed = enc.states.new_zeros(batch, self.hidden_size)
        weights = enc.states.new_zeros(batch, enc.states.size(1))
        return [state, feed, weights]

    def attention_weights(self, state) -> Tensor:
        return state[2]

    def _attend(self, h: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """h [B, T, H] → dropped-out attentional vectors [B, T, H] and weights [B, T, S]."""
        context, weights = self.attention(h, enc.extras["keys"], enc.states, enc.mask)
        vector = self.combine(torch.cat([context, h], dim=-1))
        return (torch.tanh(vector) if self.output_tanh else vector), weights

    def forward(self, emb: Tensor, enc: EncoderOutput, state) -> Tensor:
        if not self.input_feed:
            h, _ = self.rnn(emb, None, state[0])
            return self.dropout(self._attend(h, enc)[0])
        # The embeddings' share of the first layer's input projection, for all steps at once.
        # Unbound once: a slice per step would make each step's backward fill a zeroed
        # [B, T, gates·H] tensor and add it to the others.
        known = self.rnn.known_input(emb)
        known_steps = known[0].unbind(1) if known is not None else None
        features = []
        for t, step_emb in enumerate(emb.unbind(1)):
            step_known = None if known is None else (known_steps[t], known[1])
            out, state = self._step(step_emb, enc, state, step_known)
            features.append(out)
        return torch.stack(features, dim=1)

    def step(self, emb: Tensor, enc: EncoderOutput, state):
        return self._step(emb, enc, state)

    def _step(
        self, emb: Tensor, enc: EncoderOutput, state, known: tuple[Tensor, Tensor] | None = None
    ):
        rnn_state, feed, _ = state
        if known is not None:
            h, rnn_state = self.rnn.step(feed, rnn_state, known)
        else:
            x = torch.cat([emb, feed], dim=-1) if self.input_feed else emb
            h, rnn_state = self.rnn.step(x, rnn_state)
        vector, weights = self._attend(h.unsqueeze(1), enc)
        feed = self.dropout.step(vector.squeeze(1))
        return feed, [rnn_state, feed, weights.squeeze(1)]


def bahdanau(
    *,
    embedding_size: int,
    encoder_size: int,
    hidden_size: int,
    cell,
    cell_options: dict | None = None,
    num_layers: int = 1,
    dropout: float = 0.0,
    fused: bool = True,
    score: str = "mlp",
    input_feed: bool = True,
    bridge: str = "learned",
    attention_size: int | None = None,
    variational_dropout: bool = False,
    attention_output: str = "tanh",
) -> AttentionDecoder:
    """Additive (MLP) attention, input feeding on (Bahdanau et al. 2015; as in OpenNMT/Joey)."""
    return AttentionDecoder(**locals())


def luong(
    *,
    embedding_size: int,
    encoder_size: int,
    hidden_size: int,
    cell,
    cell_options: dict | None = None,
    num_layers: int = 1,
    dropout: float = 0.0,
    fused: bool = True,
    score: str = "general",
    input_feed: bool = True,
    bridge: str = "learned",
    variational_dropout: bool = False,
    attention_output: str = "tanh",
) -> AttentionDecoder:
    """Multiplicative attention, 'general' (h·W·k) or 'dot' (Luong et al. 2015)."""
    return AttentionDecoder(**locals())
