"""The built-in networks in numpy: an exported model folder, run without torch.

The math is `seq2seq.nn` and `seq2seq.decoders.attention` step for step (the tests hold
the two equal): an encoder of LSTM or GRU layers, one or both directions, and the
Bahdanau or Luong attention decoder with every bridge, score and attention output.
Other cells and decoders (plugins, the fixed-vector decoder) need torch:
`unsupported` says why a model cannot run here.

numpy's float32 `exp` takes a slow scalar path on CPUs without AVX-512 (5 ns an
element against 3 for `tanh` and `exp2`), so sigmoids are computed from tanh and, there,
softmaxes from exp2. With AVX-512, `exp` is the faster of the two (0.4 ns against 0.7,
and exp2 slows sevenfold at −∞), so softmaxes use it: the same values within float32
rounding either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from seq2seq.hardware import cpu_flags

CELLS = ("lstm", "gru")
LINEARS = ("attention.key_proj", "attention.query_proj", "bridge", "memory_bridge", "combine")
DECODERS = ("bahdanau", "luong")
LOG2_E = np.float32(1.4426950408889634)
X86_V4 = frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})
FAST_EXP = X86_V4 <= (cpu_flags() or frozenset())  # numpy's AVX-512 float32 exp runs here
FACTORED_LIMIT = 40.0  # e^(±80) and their products stay finite or round to 0 and ∞ alike


def unsupported(spec: dict[str, Any]) -> str | None:
    """Why the numpy runtime cannot run a model of this spec (config.json's model_spec),
    or None when it can."""
    if spec.get("cell") not in CELLS:
        return f"its cell '{spec.get('cell')}' (the numpy runtime runs {', '.join(CELLS)})"
    if spec.get("decoder") not in DECODERS:
        return f"its decoder '{spec.get('decoder')}' (the numpy runtime runs {', '.join(DECODERS)})"
    return None


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = (1 + tanh(x / 2)) / 2, in place on a fresh array."""
    y = np.multiply(x, np.float32(0.5))
    np.tanh(y, out=y)
    y *= np.float32(0.5)
    y += np.float32(0.5)
    return y


def shifted_exp(x: np.ndarray, top: np.ndarray) -> np.ndarray:
    """exp(x − top), a new array (x ≤ top; -inf entries give 0, or under 1e-30 on the exp2
    path), by the faster of numpy's exp and exp2 on this CPU (FAST_EXP)."""
    powers = np.subtract(x, top)
    if FAST_EXP:
        return np.exp(powers, out=powers)
    # exp2 of anything under -100 adds nothing next to the maximum's 1; clipped, -inf and huge
    # negatives stay on numpy's fast path (its slow one costs 3× more, subnormals too).
    powers *= LOG2_E
    np.maximum(powers, np.float32(-100), out=powers)
    return np.exp2(powers, out=powers)


def log_sum_exp(x: np.ndarray) -> np.ndarray:
    """Row-wise log Σ exp of [rows, n] float32, [rows, 1] (-inf entries add nothing)."""
    top = x.max(axis=1, keepdims=True)
    # summed by a product with ones: BLAS sums a row 3× faster than numpy's pairwise sum
    return top + np.log(shifted_exp(x, top) @ np.ones((x.shape[1], 1), np.float32))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of [rows, n] float32 (-inf entries stay -inf)."""
    return x - log_sum_exp(x)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (-inf entries get weight 0, or under 1e-30)."""
    e = shifted_exp(x, x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Cell:
    """One direction of one layer: torch's weight_ih, weight_hh and biases, transposed
    once for row-major products."""

    def __init__(self, kind: str, weights: dict[str, np.ndarray], prefix: str) -> None:
        self.kind = kind
        self.w_ih = np.ascontiguousarray(weights[prefix + "weight_ih_l0"].T)  # [I, G·H]
        self.w_hh = np.ascontiguousarray(weights[prefix + "weight_hh_l0"].T)  # [H, G·H]
        self.b_ih = weights[prefix + "bias_ih_l0"]
        self.b_hh = weights[prefix + "bias_hh_l0"]
        self.hidden_size = self.w_hh.shape[0]
        if kind == "lstm":  # the two biases only ever appear summed
            self.b_ih, self.b_hh = self.b_ih + self.b_hh, np.zeros_like(self.b_hh)

    def zero_state(self, batch: int) -> list[np.ndarray]:
        """[h] for a GRU, [h, c] for an LSTM; each [B, H]."""
        parts = 2 if self.kind == "lstm" else 1
        return [np.zeros((batch, self.hidden_size), np.float32) for _ in range(parts)]

    def step(self, input_gates: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
        """The new state from this step's input projection W_ih·x + b_ih [B, G·H]."""
        h = state[0]
        if self.kind == "lstm":
            gates = input_gates + h @ self.w_hh
            i, f, g, o = np.split(gates, 4, axis=1)
            c = sigmoid(f) * state[1] + sigmoid(i) * np.tanh(g)
            return [sigmoid(o) * np.tanh(c), c]
        i_r, i_z, i_n = np.split(input_gates, 3, axis=1)
        h_r, h_z, h_n = np.split(h @ self.w_hh + self.b_hh, 3, axis=1)
        reset, update = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        new = np.tanh(i_n + reset * h_n)
        return [new + update * (h - new)]

    def run(
        self, x: np.ndarray, lengths: np.ndarray, reverse: bool
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """x [B, T, I] → outputs [B, T, H] (zero on padding), final state. Reversed, each
        row runs from its own last token: the steps past its length come first and leave
        its state at zero."""
        batch, steps, _ = x.shape
        gates = x @ self.w_ih + self.b_ih  # every step's input projection at once
        state = self.zero_state(batch)
        outputs = np.zeros((batch, steps, self.hidden_size), np.float32)
        for t in reversed(range(steps)) if reverse else range(steps):
            live = (lengths > t)[:, None]
            new = self.step(gates[:, t], state)
            if live.all():
                state = new
            else:
                state = [np.where(live, n, s) for n, s in zip(new, state, strict=True)]
            outputs[:, t] = state[0] * live
        return outputs, state


class Candidates(NamedTuple):
    """Each row's candidate tokens under a shortlist, by position (see `Shortlisted`)."""

    positions: np.ndarray  # [B, N] in the batch's candidate list
    ids: np.ndarray  # [B, N] in the vocabulary
    bias: np.ndarray  # [B, N] the output layer's bias, -inf past the row's own


@dataclass
class Encoded:
    """The encoder's output for a batch, batch first; `index` keeps the given rows."""

    states: np.ndarray  # [B, S, D], zero on padding
    mask: np.ndarray  # [B, S] True on real tokens
    keys: np.ndarray  # [B, S, K] attention keys, projected once (factored Bahdanau: e^(−2k))
    candidates: Candidates | None = None  # each row's own, under a shortlist

    def index(self, rows: np.ndarray) -> Encoded:
        own = self.candidates
        own = None if own is None else Candidates(*(part[rows] for part in own))
        return Encoded(self.states[rows], self.mask[rows], self.keys[rows], own)


class NumpyModel:
    """A Seq2Seq of built-in parts, from its spec and its safetensors weights."""

    def __init__(self, spec: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        reason = unsupported(spec)
        if reason is not None:
            raise ValueError(f"the numpy runtime cannot run this model: {reason}")
        self.spec = spec
        options = {
            "score": "mlp" if spec["decoder"] == "bahdanau" else "general",
            "input_feed": True,
            "bridge": "learned",
            "attention_output": "tanh",
            **spec.get("decoder_options", {}),
        }
        self.options = options
        kind, layers = spec["cell"], spec["num_layers"]
        directions = 2 if spec["bidirectional"] else 1
        tied = spec.get("tie_embeddings", "none")

        def first(*names: str) -> np.ndarray:  # tied tensors are saved under one name
            return next(weights[n] for n in names if n in weights)

        tgt_names = ("tgt_embedding.weight", "output_layer.weight", "encoder.embedding.weight")
        self.tgt_embedding = first(*tgt_names[: 1 if tied == "none" else 3])
        self.src_embedding = (
            first("encoder.embedding.weight", "src_embedding.weight")
            if tied != "all"
            else self.tgt_embedding
        )
        self.encoder = [
            [Cell(kind, weights, f"encoder.rnn.layers.{i}.{d}.rnn.") for d in range(directions)]
            for i in range(layers)
        ]
        self.decoder = [
            Cell(kind, weights, f"decoder.rnn.layers.{i}.0.rnn.") for i in range(layers)
        ]
        self.hidden_size = self.decoder[0].hidden_size
        out_names = ("output_layer.weight", "tgt_embedding.weight", "encoder.embedding.weight")
        # The bias is the weight's last row, multiplied by a feature of 1: the product
        # then writes each step's [B, V] logits once instead of writing and adding to them.
        self._output_layer = np.concatenate(
            [first(*out_names[: 1 if tied == "none" else 3]).T, weights["output_layer.bias"][None]]
        )  # [H + 1, V]
        self.output_weight, self.output_bias = self._output_layer[:-1], self._output_layer[-1]
        self.vocab_size = self.output_weight.shape[1]  # columns of step_logits
        # The decoder's linear layers by their torch names: (weight transposed once, bias).
        self.linear = {
            name: (
                np.ascontiguousarray(weights[f"decoder.{name}.weight"].T),
                weights.get(f"decoder.{name}.bias"),
            )
            for name in LINEARS
            if f"decoder.{name}.weight" in weights
        }
        self._factored = False
        if options["score"] == "mlp":
            self._w_query, self._b_query = self.linear["attention.query_proj"]
            self._v = weights["decoder.attention.v.weight"][0]
            # Keys and queries are products of LSTM/GRU outputs, each within (-1, 1): no
            # unit exceeds its column's sum of |W| (and |b|). Within ±40, e^(−2·unit) is
            # a normal float32, so σ(2(k + q)) may be taken as 1 / (1 + e^(−2k)·e^(−2q)).
            largest = max(
                np.abs(self.linear["attention.key_proj"][0]).sum(axis=0).max(),
                (np.abs(self._w_query).sum(axis=0) + np.abs(self._b_query)).max(),
            )
            self._factored = bool(largest <= FACTORED_LIMIT)
        self._w_combine, self._b_combine = self.linear["combine"]
        # The first decoder layer's input projection, split as torch's decoder splits it:
        # the embedding's share is a table of every target token's, made once, so a step
        # looks its tokens up and multiplies only the fed-back vector.
        first, size = self.decoder[0], self.tgt_embedding.shape[1]
        self._token_gates = self.tgt_embedding @ first.w_ih[:size] + first.b_ih  # [V, G·H]
        self._feed_gates = first.w_ih[size:]  # [H, G·H], empty without input feeding

    # -- the encoder -------------------------------------------------------------------

    def encode(
        self, src: np.ndarray, lengths: np.ndarray
    ) -> tuple[Encoded, list[list[np.ndarray]]]:
        """src [B, S] ids, lengths [B] → the encoder output and the decoder's first state."""
        x = self.src_embedding[src]
        finals: list[list[np.ndarray]] = []
        for layer in self.encoder:
            outs, finals = [], []
            for direction, cell in enumerate(layer):
                out, final = cell.run(x, lengths, reverse=direction == 1)
                outs.append(out)
                finals.append(final)
            x = np.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]
        summary = np.concatenate([f[0] for f in finals], axis=-1)
        memory = np.concatenate([f[1] for f in finals], axis=-1) if len(finals[0]) > 1 else None
        mask = np.arange(src.shape[1])[None, :] < lengths[:, None]
        score = self.options["score"]
        if score == "dot":
            keys = x
        else:
            keys = x @ self.linear["attention.key_proj"][0]
        if self._factored:  # e^(−2k), once per sentence (see features)
            keys = np.exp(-2 * keys)
        return Encoded(x, mask, keys), self._init_state(x, summary, memory)

    def _init_state(self, states: np.ndarray, summary: np.ndarray, memory: np.ndarray | None):
        """[rnn state per layer, attentional vector [B, H]] before the first target token."""
        batch, size, layers = states.shape[0], self.hidden_size, len(self.decoder)
        rnn = [cell.zero_state(batch) for cell in self.decoder]
        bridge = self.options["bridge"]
        starts = None
        if bridge in ("learned", "learned_full"):
            w, b = self.linear["bridge"]
            projected = summary @ w + b
            starts = np.tanh(projected) if bridge == "learned" else np.maximum(projected, 0)
        elif bridge == "last":
            starts = np.concatenate([summary] * layers, axis=-1)
        if starts is not None:
            for i in range(layers):
                rnn[i][0] = np.ascontiguousarray(starts[:, i * size : (i + 1) * size])
        if bridge == "learned_full" and memory is not None and len(rnn[0]) > 1:
            w, b = self.linear["memory_bridge"]
            cells = np.maximum(memory @ w + b, 0)
            for i in range(layers):
                rnn[i][1] = np.ascontiguousarray(cells[:, i * size : (i + 1) * size])
        return [rnn, np.zeros((batch, size), np.float32)]

    # -- one decoder step ----------------------------------------------------------------

    def features(self, tokens: np.ndarray, enc: Encoded, state) -> tuple[np.ndarray, Any]:
        """The attentional vector [B, H] after the previous tokens [B] (vocabulary ids)."""
        rnn, feed = state
        input_gates = self._token_gates[tokens]
        if self.options["input_feed"]:
            input_gates = input_gates + feed @ self._feed_gates
        new_rnn: list[list[np.ndarray]] = []
        for cell, layer_state in zip(self.decoder, rnn, strict=True):
            if new_rnn:  # a layer above the first reads the output of the one below
                input_gates = new_rnn[-1][0] @ cell.w_ih + cell.b_ih
            new_rnn.append(cell.step(input_gates, layer_state))
        h = new_rnn[-1][0]
        if self._factored:
            # v·tanh(k + q) = 2v·σ(2(k + q)) − Σv, and the softmax ignores Σv. With e^(−2k)
            # kept from the encoder, σ costs a product, a sum and a reciprocal over the
            # step's largest tensor [B, S, A] instead of a tanh (3 ns an element in numpy).
            z = enc.keys * np.exp(-2 * (h @ self._w_query + self._b_query))[:, None, :]
            z += np.float32(1)
            scores = np.reciprocal(z, out=z) @ (2 * self._v)
        elif self.options["score"] == "mlp":  # v·tanh(k + q), keys unbounded: plainly
            z = enc.keys + (h @ self._w_query + self._b_query)[:, None, :]
            scores = np.tanh(z, out=z) @ self._v
        else:
            scores = np.matmul(enc.keys, h[:, :, None])[:, :, 0]
        scores = np.where(enc.mask, scores, -np.inf)
        weights = softmax(scores)
        context = np.matmul(weights[:, None, :], enc.states)[:, 0]
        vector = np.concatenate([context, h], axis=1) @ self._w_combine
        if self._b_combine is not None:
            vector += self._b_combine
        if self.options["attention_output"] == "tanh":
            vector = np.tanh(vector)
        return vector, [new_rnn, vector]

    def step_logits(self, tokens: np.ndarray, enc: Encoded, state) -> tuple[np.ndarray, Any]:
        """Output scores [B, V] of the next token after the previous tokens [B] (their
        log-softmax is the log-probabilities; greedy search needs only its normaliser)."""
        features, state = self.features(tokens, enc, state)
        ones = np.ones((features.shape[0], 1), np.float32)
        return np.concatenate([features, ones], axis=1) @ self._output_layer, state


def select_state(state, rows: np.ndarray):
    """The decoder state of the given rows (search reorders and drops rows)."""
    rnn, feed = state
    return [[[part[rows] for part in layer] for layer in rnn], feed[rows]]


class Shortlisted:
    """A NumpyModel decoding over each sentence's own candidates
    (`seq2seq.translation.shortlist`): a batch's candidate ids [C] are scored in one
    product, then each row keeps only its sentence's [B, N] of them (N: the most any
    sentence has, about 300 of 8,000 on Multi30k). The softmax and the search's top-k
    then run over N columns, not C.

    Tokens are positions in the row's own list, sorted by id like the union, so the
    special tokens (always candidates) sit at their own ids and ties fall the same way;
    `vocabulary_ids` maps a sentence's positions back.
    """

    def __init__(self, model: NumpyModel, ids: np.ndarray, allowed: np.ndarray) -> None:
        self.model = model
        self.weight = np.ascontiguousarray(model.output_weight[:, ids])  # [H, C]
        width = int(allowed.sum(axis=1).max())
        # each row's allowed positions first, in order; the rest pad up to the widest row
        self.positions = np.argsort(~allowed, axis=1, kind="stable")[:, :width]  # [B, N]
        kept = np.take_along_axis(allowed, self.positions, axis=1)
        self.ids = ids[self.positions]  # [B, N] vocabulary ids
        self.bias = np.where(kept, model.output_bias[self.ids], np.float32(-np.inf))
        self.vocab_size = width  # columns of step_logits

    def encode(self, src: np.ndarray, lengths: np.ndarray):
        enc, state = self.model.encode(src, lengths)
        # per sentence: the search reorders and drops them with enc
        enc.candidates = Candidates(self.positions, self.ids, self.bias)
        return enc, state

    def vocabulary_ids(self, sentence: int, tokens: list[int]) -> list[int]:
        """A hypothesis of the batch's `sentence`-th source, from positions to ids."""
        return self.ids[sentence, tokens].tolist()

    def step_logits(self, tokens: np.ndarray, enc: Encoded, state) -> tuple[np.ndarray, Any]:
        """Scores [B, N] of each row's candidates after the previous positions [B]."""
        own = enc.candidates
        rows = np.arange(tokens.size)
        features, state = self.model.features(own.ids[rows, tokens], enc, state)
        union = features @ self.weight
        return np.take_along_axis(union, own.positions, axis=1) + own.bias, state
