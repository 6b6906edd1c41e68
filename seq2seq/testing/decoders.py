"""`check_decoder`: the `seq2seq.decoders` contract (`seq2seq.contracts.Decoder`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.nn.encoder import EncoderOutput
from seq2seq.nn.recurrent import map_state
from seq2seq.testing.common import (
    DecoderContractError,
    Failure,
    check_signature,
    close,
    leaves,
    max_diff,
    name_of,
    single_threaded,
    skeleton,
    structure,
    weights_only_round_trip,
)

BATCH, SOURCE, STEPS = 3, 6, 4
LENGTHS = torch.tensor([6, 4, 1])
_DECODER_FIX = (
    "A decoder is built as factory(*, embedding_size, encoder_size, hidden_size, cell, "
    "cell_options, num_layers, dropout, fused, **options) and offers output_size, "
    "init_state(enc), forward(emb, enc, state) and step(emb, enc, state)."
)


class DecoderUnderTest:
    def __init__(self, factory: Callable[..., nn.Module], cell: str, options: dict) -> None:
        self.factory, self.options = factory, options
        self.fail = Failure(DecoderContractError, f"decoder factory {name_of(factory)}")
        self.arguments = dict(
            embedding_size=5,
            encoder_size=6,
            hidden_size=7,
            cell=registry.load("seq2seq.cells", cell),
            cell_options={},
            num_layers=2,
            dropout=0.0,
            fused=True,
        )
        self.gen = torch.Generator().manual_seed(1234)
        self.decoder: nn.Module | None = None

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64)

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        try:
            decoder = self.factory(**self.arguments, **self.options)
        except Exception as exc:
            raise self.fail(
                f"factory(**framework arguments, **{self.options!r}) raised "
                f"{type(exc).__name__}: {exc}",
                _DECODER_FIX,
            ) from exc
        if not isinstance(decoder, nn.Module):
            raise self.fail(
                f"the factory returned {type(decoder).__name__}, not a torch.nn.Module.",
                "subclass torch.nn.Module and return an instance from the factory.",
            )
        return decoder.double().eval()

    def encoder_output(self) -> EncoderOutput:
        mask = torch.arange(SOURCE) < LENGTHS.unsqueeze(1)
        states = self.randn(BATCH, SOURCE, self.arguments["encoder_size"]) * mask.unsqueeze(-1)
        summary = self.randn(BATCH, self.arguments["encoder_size"])
        return EncoderOutput(states, mask, summary, LENGTHS.clone())

    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise self.fail(f"{what} raised {type(exc).__name__}: {exc}", _DECODER_FIX) from exc

    def steps(self, decoder: nn.Module, emb: Tensor, enc: EncoderOutput, state: Any):
        """Features [B, T, output_size] from `step` over emb [B, T, E], and the final state."""
        features = []
        for t in range(emb.size(1)):
            out, state = self.call("step(emb, enc, state)", decoder.step, emb[:, t], enc, state)
            features.append(out)
        return torch.stack(features, 1), state


def factory_signature(t: DecoderUnderTest) -> None:
    check_signature(
        t.fail,
        "decoder",
        t.factory,
        t.options,
        "pass only options the factory accepts, and accept every framework argument "
        "as a keyword parameter (see seq2seq.contracts.DecoderFactory).",
        framework=t.arguments,
    )


def builds_a_module(t: DecoderUnderTest) -> None:
    t.decoder = t.build(0)
    size = getattr(t.decoder, "output_size", None)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise t.fail(
            f"output_size is {size!r}; it must be a positive int.",
            "set self.output_size to the size of the features forward and step return.",
        )
    for method in ("init_state", "forward", "step"):
        if not callable(getattr(t.decoder, method, None)):
            raise t.fail(f"the decoder has no {method}() method.", _DECODER_FIX)


def state_is_batch_first(t: DecoderUnderTest) -> None:
    state = t.call("init_state(enc)", t.decoder.init_state, t.encoder_output())
    parts = leaves(state)
    if (
        not parts
        or any(not isinstance(s, Tensor) or s.dim() == 0 for s in parts)
        or any(s.size(0) != BATCH for s in parts)
    ):
        raise t.fail(
            f"init_state(enc) returned {structure(state)}: it must be a Tensor or nested "
            f"tuples/lists of Tensors, each batch-first [batch={BATCH}, ...].",
            "keep every tensor of the state batch-first: beam search reorders the state "
            "along dimension 0.",
        )


def output_shapes(t: DecoderUnderTest) -> None:
    enc, size = t.encoder_output(), t.decoder.output_size
    emb = t.randn(BATCH, STEPS, t.arguments["embedding_size"])
    state = t.decoder.init_state(enc)
    features = t.call("forward(emb, enc, state)", t.decoder, emb, enc, state)
    if not isinstance(features, Tensor) or tuple(features.shape) != (BATCH, STEPS, size):
        raise t.fail(
            f"forward returned {structure(features)}; expected Tensor[{BATCH}, {STEPS}, {size}] "
            "([batch, steps, output_size]).",
            "return the features of every target position from forward.",
        )
    out = t.call("step(emb, enc, state)", t.decoder.step, emb[:, 0], enc, state)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise t.fail(
            f"step returned {structure(out)}; it must return a pair (features, state).",
            "return features [batch, output_size] and the new state from step.",
        )
    if not isinstance(out[0], Tensor) or tuple(out[0].shape) != (BATCH, size):
        raise t.fail(
            f"step returned features {structure(out[0])}; expected Tensor[{BATCH}, {size}].",
            "return features [batch, output_size] as the first element of step's result.",
        )
    if skeleton(out[1]) != skeleton(state):
        raise t.fail(
            f"step returned a state {structure(out[1])} shaped unlike init_state's "
            f"{structure(state)}.",
            "return the new state with exactly the structure and shapes of init_state's.",
        )


def forward_equals_steps(t: DecoderUnderTest) -> None:
    enc = t.encoder_output()
    emb = t.randn(BATCH, STEPS, t.arguments["embedding_size"])
    teacher = t.decoder(emb, enc, t.decoder.init_state(enc))
    stepped, _ = t.steps(t.decoder, emb, enc, t.decoder.init_state(enc))
    if not close(teacher, stepped, 1e-8):
        raise t.fail(
            "forward (teacher forcing) differs from calling step once per position "
            f"(max difference {max_diff(teacher, stepped):.3g}): training and translation "
            "would compute different models.",
            "make forward compute exactly what step computes position by position.",
        )


def rows_follow_reordering(t: DecoderUnderTest) -> None:
    """What beam search does: reorder sentences and state rows, and expect the same rows."""
    enc = t.encoder_output()
    emb = t.randn(BATCH, STEPS, t.arguments["embedding_size"])
    state = t.decoder.init_state(enc)
    first, state = t.call("step(emb, enc, state)", t.decoder.step, emb[:, 0], enc, state)
    order = torch.tensor([2, 0, 1])
    out, _ = t.steps(t.decoder, emb[:, 1:], enc, state)
    moved, _ = t.steps(
        t.decoder,
        emb[order, 1:],
        enc.index_select(order),
        map_state(lambda s: s.index_select(0, order), state),
    )
    if not close(out[order], moved, 1e-9):
        raise t.fail(
            "reordering the sentences (encoder output and state rows, as beam search does) "
            "changed their features: the decoder keeps per-sentence values outside the state "
            "or mixes rows.",
            "keep everything that depends on the sentence in the state or in enc.extras "
            "(batch first), and compute every row on its own.",
        )


def attention_weights(t: DecoderUnderTest) -> None:
    weights_of = getattr(t.decoder, "attention_weights", None)
    if weights_of is None:
        return
    enc = t.encoder_output()
    _, state = t.steps(
        t.decoder, t.randn(BATCH, 2, t.arguments["embedding_size"]), enc, t.decoder.init_state(enc)
    )
    weights = t.call("attention_weights(state)", weights_of, state)
    if not isinstance(weights, Tensor) or tuple(weights.shape) != (BATCH, SOURCE):
        raise t.fail(
            f"attention_weights(state) returned {structure(weights)}; expected "
            f"Tensor[{BATCH}, {SOURCE}] ([batch, source length]).",
            "return the attention of the last step over the source positions, kept in the state.",
        )
    sums = weights.sum(-1)
    if not close(sums, torch.ones_like(sums), 1e-6) or bool(weights[~enc.mask].abs().sum() > 0):
        raise t.fail(
            f"attention weights do not sum to 1 over the real source tokens (sums "
            f"{sums.tolist()}) or fall on padding.",
            "normalise with a softmax over the source positions after masking padding with -inf.",
        )


def gradients_reach_inputs_and_parameters(t: DecoderUnderTest) -> None:
    decoder = t.decoder.train()
    enc = t.encoder_output()
    enc.states.requires_grad_(True)
    enc.summary.requires_grad_(True)
    emb = t.randn(BATCH, STEPS, t.arguments["embedding_size"]).requires_grad_(True)
    decoder.zero_grad(set_to_none=True)
    try:
        decoder(emb, enc, decoder.init_state(enc)).sum().backward()
    except RuntimeError as exc:
        raise t.fail(
            f"backward failed: {exc}", "make forward differentiable: no .detach() or .item()."
        ) from exc
    finally:
        decoder.eval()
    if emb.grad is None or float(emb.grad.abs().sum()) == 0.0:
        raise t.fail(
            "no gradient reaches the target embeddings.",
            "compute the features from emb with differentiable operations.",
        )
    reached = [g for g in (enc.states.grad, enc.summary.grad) if g is not None]
    if not reached or all(float(g.abs().sum()) == 0.0 for g in reached):
        raise t.fail(
            "no gradient reaches the encoder output: the decoder ignores the source.",
            "use enc.states (attention) or enc.summary (a fixed vector) in init_state or forward.",
        )
    unused = [n for n, p in decoder.named_parameters() if p.requires_grad and p.grad is None]
    if unused:
        raise t.fail(
            f"parameter '{unused[0]}' gets no gradient.",
            f"use '{unused[0]}' in forward, or register it as a buffer if it is a constant.",
        )


def state_dict_round_trip(t: DecoderUnderTest) -> None:
    fresh = t.build(1)
    try:
        fresh.load_state_dict(weights_only_round_trip(t.decoder.state_dict()))
    except Exception as exc:
        raise t.fail(
            f"the state_dict does not load into a fresh instance (read with "
            f"torch.load(weights_only=True)): {exc}",
            "keep only tensors in the state_dict and create every parameter in __init__.",
        ) from exc
    enc = t.encoder_output()
    emb = t.randn(BATCH, STEPS, t.arguments["embedding_size"])
    ours = t.decoder(emb, enc, t.decoder.init_state(enc))
    theirs = fresh(emb, enc, fresh.init_state(enc))
    if not close(ours, theirs, 1e-12):
        raise t.fail(
            "a fresh instance loaded with this decoder's state_dict computes something else: "
            "some weights are not saved.",
            "register every tensor the decoder uses as nn.Parameter or with register_buffer.",
        )


DECODER_CLAUSES: list[tuple[str, Callable[[DecoderUnderTest], None]]] = [
    ("factory signature", factory_signature),
    ("builds a module", builds_a_module),
    ("state is batch-first", state_is_batch_first),
    ("output shapes", output_shapes),
    ("forward equals step", forward_equals_steps),
    ("rows follow reordering", rows_follow_reordering),
    ("attention weights", attention_weights),
    ("gradient flow", gradients_reach_inputs_and_parameters),
    ("save/load", state_dict_round_trip),
]
"""The decoder contract's clauses, in the order `check_decoder` runs them."""


@single_threaded
def check_decoder(factory: Callable[..., nn.Module], cell: str = "gru", **options: Any) -> None:
    """Check a `seq2seq.decoders` factory against the decoder contract.

    Builds the decoder as seq2seq does (two layers of the built-in `cell`) and runs
    every clause of `DECODER_CLAUSES` in float64: `output_size` is set;
    `init_state` is batch-first; `forward` gives [batch, steps, output_size] and
    `step` [batch, output_size] with a state shaped like init_state's; forward
    equals step position by position; reordering sentences (as beam search does)
    reorders the features; `attention_weights`, if offered, are [batch, source]
    rows summing to 1 off padding; gradients reach the embeddings, the encoder
    output and every parameter; a `state_dict` round trip gives the same decoder.
    """
    t = DecoderUnderTest(factory, cell, options)
    t.fail.run(DECODER_CLAUSES, t)
