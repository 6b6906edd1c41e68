"""The built-in networks in numpy: an exported model folder, run without torch.

The math is `seq2seq.nn` and `seq2seq.decoders.attention` step for step (the tests hold
the two equal): an encoder of LSTM or GRU layers, one or both directions, and the
Bahdanau or Luong attention decoder with every bridge, score and attention output.
Other cells and decoders (plugins, the fixed-vector decoder) need torch:
`unsupported` says why a model cannot run here.

numpy's float32 `exp` takes a slow scalar path on CPUs without AVX-512 (15 ns an
element against 4 for `tanh` and `exp2`), so sigmoids are computed from tanh and
softmaxes from exp2: the same values within float32 rounding. Those element-wise
loops run on one core, so the two largest (the attention's tanh, the output's exp2)
are split by rows over the CPU's cores: numpy releases the GIL inside them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

CELLS = ("lstm", "gru")
LINEARS = ("attention.key_proj", "attention.query_proj", "bridge", "memory_bridge", "combine")
DECODERS = ("bahdanau", "luong")
LOG2_E = np.float32(1.4426950408889634)
THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8)
SPLIT_FROM = 1 << 16  # elements; below, one core is quicker than handing work over
_pool: ThreadPoolExecutor | None = None


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


def in_place(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
    """`ufunc(x, out=x)`, the rows of a large x split over the cores."""
    global _pool
    if THREADS == 1 or x.size < SPLIT_FROM or x.shape[0] < THREADS:
        return ufunc(x, out=x)
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="seq2seq-runtime")
    list(_pool.map(lambda part: ufunc(part, out=part), np.array_split(x, THREADS)))
    return x


def log_sum_exp(x: np.ndarray) -> np.ndarray:
    """Row-wise log Σ exp of [rows, n] float32, [rows, 1] (-inf entries add nothing)."""
    top = x.max(axis=1, keepdims=True)
    # exp2 of anything under -100 adds nothing next to the maximum's 1; clipped, -inf and huge
    # negatives stay on numpy's fast path (its slow one costs 3× more, subnormals too).
    powers = np.maximum((x - top) * LOG2_E, np.float32(-100))
    return top + np.log(in_place(np.exp2, powers).sum(axis=1, keepdims=True))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of [rows, n] float32 (-inf entries stay -inf)."""
    return x - log_sum_exp(x)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (-inf entries get weight 0)."""
    e = np.exp2((x - x.max(axis=-1, keepdims=True)) * LOG2_E)
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


@dataclass
class Encoded:
    """The encoder's output for a batch, batch first; `index` keeps the given rows."""

    states: np.ndarray  # [B, S, D], zero on padding
    mask: np.ndarray  # [B, S] True on real tokens
    keys: np.ndarray  # [B, S, K] attention keys, projected once
    row_bias: np.ndarray | None = None  # [B, C] a shortlist's output bias, -inf if forbidden

    def index(self, rows: np.ndarray) -> Encoded:
        bias = None if self.row_bias is None else self.row_bias[rows]
        return Encoded(self.states[rows], self.mask[rows], self.keys[rows], bias)


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
        self.output_weight = np.ascontiguousarray(
            first(*out_names[: 1 if tied == "none" else 3]).T
        )  # [H, V]
        self.output_bias = weights["output_layer.bias"]
        # The decoder's linear layers by their torch names: (weight transposed once, bias).
        self.linear = {
            name: (
                np.ascontiguousarray(weights[f"decoder.{name}.weight"].T),
                weights.get(f"decoder.{name}.bias"),
            )
            for name in LINEARS
            if f"decoder.{name}.weight" in weights
        }
        if options["score"] == "mlp":
            self._w_query, self._b_query = self.linear["attention.query_proj"]
            self._v = weights["decoder.attention.v.weight"][0]
        self._w_combine, self._b_combine = self.linear["combine"]

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
        x = self.tgt_embedding[tokens]
        if self.options["input_feed"]:
            x = np.concatenate([x, feed], axis=1)
        new_rnn = []
        for cell, layer_state in zip(self.decoder, rnn, strict=True):
            layer_state = cell.step(x @ cell.w_ih + cell.b_ih, layer_state)
            new_rnn.append(layer_state)
            x = layer_state[0]
        h = x
        if self.options["score"] == "mlp":  # v·tanh(W_k k + W_q h + b): torch's 2v·σ(2z) − Σv
            z = enc.keys + (h @ self._w_query + self._b_query)[:, None, :]
            scores = in_place(np.tanh, z) @ self._v
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
        return features @ self.output_weight + self.output_bias, state


def select_state(state, rows: np.ndarray):
    """The decoder state of the given rows (search reorders and drops rows)."""
    rnn, feed = state
    return [[[part[rows] for part in layer] for layer in rnn], feed[rows]]


class Shortlisted:
    """A NumpyModel decoding over candidate ids [C] (`seq2seq.translation.shortlist`):
    tokens are candidate positions, log-probabilities [B, C] are -inf where `allowed`
    [B, C] forbids a sentence a candidate."""

    def __init__(self, model: NumpyModel, ids: np.ndarray, allowed: np.ndarray) -> None:
        self.model, self.ids = model, ids
        self.weight = np.ascontiguousarray(model.output_weight[:, ids])  # [H, C]
        self.row_bias = np.where(allowed, model.output_bias[ids], np.float32(-np.inf))

    def encode(self, src: np.ndarray, lengths: np.ndarray):
        enc, state = self.model.encode(src, lengths)
        enc.row_bias = self.row_bias  # per sentence: the search reorders it with enc
        return enc, state

    def step_logits(self, tokens: np.ndarray, enc: Encoded, state) -> tuple[np.ndarray, Any]:
        """Scores [B, C] of the candidates after the previous candidate positions [B]."""
        features, state = self.model.features(self.ids[tokens], enc, state)
        return features @ self.weight + enc.row_bias, state
