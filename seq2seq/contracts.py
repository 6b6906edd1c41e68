"""The plugin contracts: what seq2seq gives each kind of plugin and what it expects back.

Cells, decoders, tokenizers and search strategies are plugins, found through the
entry-point groups `seq2seq.cells`, `seq2seq.decoders`, `seq2seq.tokenizers` and
`seq2seq.search`. Each group has one contract, written here once as a
`typing.Protocol`: the registry checks plugin options against it, the author kit
(`seq2seq.testing`) tests a plugin against it clause by clause, and the plugin
documentation is rendered from these docstrings.

A plugin factory's parameters fall in two parts. The *framework arguments* are
the ones seq2seq itself passes (positional-only or keyword-only in the factory
Protocols below, e.g. a cell's `input_size` and `hidden_size`); every other
parameter is an *option* the user sets (`model.cell_options`,
`model.decoder_options`, `tokenizer.options`, `--search-option KEY=VALUE` and the
generated search flags). Give options defaults and simple type hints (int, float,
str, bool, Literal, Optional): seq2seq then checks the values users give and lists
the accepted options, with defaults, when one is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from seq2seq.nn.encoder import EncoderOutput
    from seq2seq.search import Hypothesis

State = Any
"""A recurrent state: a Tensor or a (nested) tuple/list of Tensors, each batch first."""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
"""The four special ids every tokenizer reserves, so models, losses and search never ask."""

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
"""The surface forms of the special ids 0..3."""


# ------------------------------------------------------------------ cells


@runtime_checkable
class Cell(Protocol):
    """One time step of a recurrent network (a `torch.nn.Module`).

    seq2seq runs the cell over time itself (padding, direction, layers, dropout):
    a padded row's state is kept unchanged on its padding steps, beam search
    reorders states along dimension 0, and a bidirectional encoder runs a second
    instance over reversed rows. So the cell must keep every row independent of
    the others and everything that changes over time in the state it returns,
    never on `self`.

    A cell may also offer `forward_sequence(x [B, T, input_size], state,
    lengths=None) -> (outputs [B, T, hidden_size], final_state)`, a fused path
    that must compute exactly what the step loop computes (zero outputs on
    padding, each row's state after its last real step).
    """

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """The state before the first step: a Tensor or tuple of Tensors, each [batch_size, ...].

        Created on `device` with `dtype`; None means the parameters' device and dtype.
        """
        ...

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: x [batch, input_size] and the state → (h [batch, hidden_size], new_state).

        `new_state` has exactly the structure and shapes of `state`; `state` itself is
        never changed in place. Gradients flow to x, to every parameter and, through
        the state, to earlier steps. In eval mode the result is deterministic.
        """
        ...


class CellFactory(Protocol):
    """What a `seq2seq.cells` entry point names: `factory(input_size, hidden_size, **options)`.

    `input_size` and `hidden_size` are passed by seq2seq (positionally); every other
    parameter is an option from `model.cell_options`. The returned module's state
    dict must load into a fresh instance built with the same arguments (so that
    checkpoints work) and hold only tensors (checkpoints are read with
    `torch.load(weights_only=True)`).
    """

    def __call__(self, input_size: int, hidden_size: int, /, **options: Any) -> Cell: ...


# ------------------------------------------------------------------ decoders


@runtime_checkable
class Decoder(Protocol):
    """How the decoder RNN consumes the encoder (a `torch.nn.Module`).

    `enc` is a `seq2seq.nn.encoder.EncoderOutput`: `states` [B, S, encoder_size]
    (zero on padding), `mask` [B, S] (True on real tokens), `summary`
    [B, encoder_size] (the final hidden states), `memory` [B, encoder_size] (the final
    cell states of an LSTM-like cell, else None), `lengths` [B] and `extras`, a dict
    where a decoder may keep per-sentence tensors it derives once (batch first: search
    reorders them).
    The model adds the output projection to the vocabulary after `forward` and `step`.
    """

    output_size: int
    """Size of the feature vector fed to the output projection."""

    def init_state(self, enc: EncoderOutput) -> State:
        """The decoder state before the first target token, batch first (search reorders it)."""
        ...

    def forward(self, emb: Tensor, enc: EncoderOutput, state: State) -> Tensor:
        """Teacher forcing: target embeddings emb [B, T, E] → features [B, T, output_size].

        Equal to calling `step` T times from the same state.
        """
        ...

    def step(self, emb: Tensor, enc: EncoderOutput, state: State) -> tuple[Tensor, State]:
        """Generation: one target embedding emb [B, E] → (features [B, output_size], state)."""
        ...


@runtime_checkable
class AttentionDecoder(Decoder, Protocol):
    """A decoder that also exposes its attention (used for coverage penalties and alignments)."""

    def attention_weights(self, state: State) -> Tensor:
        """Attention weights [B, S] of the last `step`, kept in the state (search reorders them)."""
        ...


class DecoderFactory(Protocol):
    """What a `seq2seq.decoders` entry point names; seq2seq passes the model's settings.

    The keyword arguments below come from the model config: `cell` is the cell
    factory (build the decoder RNN with it, e.g. through
    `seq2seq.nn.recurrent.RecurrentStack`), `cell_options` its options, `fused`
    whether cells may take their fused path. Every other parameter is an option
    from `model.decoder_options`.
    """

    def __call__(
        self,
        *,
        embedding_size: int,
        encoder_size: int,
        hidden_size: int,
        cell: CellFactory,
        cell_options: dict[str, Any],
        num_layers: int,
        dropout: float,
        fused: bool,
        **options: Any,
    ) -> Decoder: ...


# ------------------------------------------------------------------ tokenizers


@runtime_checkable
class Tokenizer(Protocol):
    """Text ↔ ids; trained on the training split, saved inside checkpoints, reversible.

    The entry point names the class. Ids 0..3 are reserved for `SPECIALS`
    (pad, unk, bos, eos): `encode` may return unk (1) but never pad, bos or eos;
    `decode` skips pad, bos and eos. Real tokens are numbered from 4.
    """

    vocab_size: int
    """Number of ids, specials included, at most the requested size."""

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, /, **options: Any) -> Tokenizer:
        """A tokenizer trained on `texts` with at most `vocab_size` ids.

        seq2seq passes the texts and the size; every other parameter is an option
        from `tokenizer.options`.
        """
        ...

    def encode(self, text: str) -> list[int]:
        """Python ints in [0, vocab_size); `decode(encode(text)) == text`; '' gives []."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`, skipping pad, bos and eos; [] gives ''."""
        ...

    def pieces(self, ids: list[int]) -> list[str]:
        """One readable piece per id (attention plots, alignments)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything encode/decode need, as plain data (read with weights_only=True)."""
        ...

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Tokenizer:
        """The tokenizer `state_dict()` came from, encoding exactly as it did."""
        ...

    def save(self, directory: Path) -> None:
        """Write human-readable files (vocabulary, model) into `directory`, creating it."""
        ...


# ------------------------------------------------------------------ search


class TranslationModel(Protocol):
    """What a search strategy may use of the model (`seq2seq.nn.model.Seq2Seq`)."""

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encoder output for src [B, S] (PAD on padding) with src_lengths [B]."""
        ...

    def init_state(self, enc: EncoderOutput) -> State:
        """The decoder state before the first target token."""
        ...

    def decode_step(self, tokens: Tensor, enc: EncoderOutput, state: State) -> tuple[Tensor, State]:
        """Log-probabilities [B, V] of the next token after tokens [B] (start with BOS)."""
        ...

    def attention(self, state: State) -> Tensor | None:
        """Attention weights [B, S] of the last `decode_step`, or None (no attention)."""
        ...


class SearchStrategy(Protocol):
    """What a `seq2seq.search` entry point names: a function that translates a batch.

    seq2seq passes the model (in eval mode, under `torch.inference_mode`), the
    source batch and the length limits; every other keyword parameter is an option
    (`--search-option KEY=VALUE`, and a command-line flag generated from the
    parameter: `top_k` becomes `--top-k`, with its type hint as the flag's type and
    its help text from the docstring's `Args:` section).

    Reorder decoder states with `seq2seq.nn.recurrent.map_state` (they may be
    tuples) and encoder outputs with `EncoderOutput.index_select`. Never change the
    model. A strategy may carry a `check_options(**options)` attribute that raises
    ValueError for settings it cannot use; the command line calls it with every
    option (defaults filled in) before it loads a model.
    """

    def __call__(
        self,
        model: TranslationModel,
        src: Tensor,
        src_lengths: Tensor,
        /,
        *,
        max_length: int,
        max_length_ratio: float,
        **options: Any,
    ) -> list[list[Hypothesis]]:
        """One list of hypotheses per sentence, in input order, each non-empty and best first.

        Args:
            model: the translation model.
            src: source ids [B, S], PAD after each sentence's end.
            src_lengths: source lengths [B].
            max_length: most tokens generated per sentence.
            max_length_ratio: most tokens per source token; see
                `seq2seq.search.length_limits`, which combines both limits.

        A hypothesis's tokens are Python ints, without BOS or EOS and never PAD; its
        score is a float (higher is better).
        """
        ...


# ------------------------------------------------------------------ framework arguments

_FACTORIES: dict[str, Callable[..., Any]] = {
    "seq2seq.cells": CellFactory.__call__,
    "seq2seq.decoders": DecoderFactory.__call__,
    "seq2seq.tokenizers": Tokenizer.train,
    "seq2seq.search": SearchStrategy.__call__,
}


def framework_arguments(group: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(positional, keyword) names of the arguments seq2seq passes to a `group` factory.

    For tokenizers the factory is the class's `train`. Every other parameter of a
    plugin's factory is a user option.
    """
    params = [
        p
        for p in inspect.signature(_FACTORIES[group]).parameters.values()
        if p.name not in ("self", "cls")
    ]
    positional = tuple(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY)
    keyword = tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
    return positional, keyword
