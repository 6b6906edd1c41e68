"""The plugin author kit: passes on every built-in, fails with a useful message on broken
plugins (what is wrong, and how to fix it)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.search import Hypothesis
from seq2seq.testing import (
    BUILTIN_CELL_SETTINGS,
    CELL_CLAUSES,
    CellContractError,
    DecoderContractError,
    SearchContractError,
    TokenizerContractError,
    check_cell,
    check_decoder,
    check_search,
    check_tokenizer,
)
from seq2seq.tokenizers import BOS_ID
from seq2seq.tokenizers.simple import CharTokenizer

BUILTIN_CELLS = BUILTIN_CELL_SETTINGS


@pytest.mark.parametrize("name,options", BUILTIN_CELLS)
def test_builtin_cells_pass(name, options):
    check_cell(registry.load("cells", name), **options)


@pytest.mark.parametrize(
    "name,options",
    [("char", {}), ("word", {}), ("sentencepiece", {}), ("sentencepiece", {"model_type": "bpe"})],
    ids=["char", "word", "sentencepiece-unigram", "sentencepiece-bpe"],
)
def test_builtin_tokenizers_pass(name, options):
    check_tokenizer(registry.load("tokenizers", name), **options)


@pytest.mark.parametrize("name,options", [("greedy", {}), ("beam", {"beam_size": 3, "nbest": 2})])
def test_builtin_search_strategies_pass(name, options):
    check_search(registry.load("search", name), **options)


# ------------------------------------------------------------------ broken cells


class GoodCell(nn.Module):
    """A correct Elman cell written the way a plugin author would; broken variants below."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.w = nn.Linear(input_size, hidden_size)
        self.u = nn.Linear(hidden_size, hidden_size, bias=False)

    def initial_state(self, batch_size, device=None, dtype=None):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor):
        h = torch.tanh(self.w(x) + self.u(state))
        return h, h


class IgnoresState(GoodCell):
    def forward(self, x, state):
        h = torch.tanh(self.w(x)) + 0 * self.u(x.new_zeros(x.size(0), self.hidden_size))
        return h, h


class WrongOutputShape(GoodCell):
    def forward(self, x, state):
        h, _ = super().forward(x, state)
        return torch.cat([h, h], dim=-1), h


class LeaksAcrossBatch(GoodCell):
    def forward(self, x, state):
        h, _ = super().forward(x, state)
        h = h + h.mean(dim=0, keepdim=True)
        return h, h


class IgnoresDevice(GoodCell):
    def initial_state(self, batch_size, device=None, dtype=None):
        return torch.zeros(batch_size, self.hidden_size, dtype=dtype)


class NotBatchFirst(GoodCell):
    def initial_state(self, batch_size, device=None, dtype=None):
        return torch.zeros(self.hidden_size, batch_size, device=device, dtype=dtype)


class ChangesStateInPlace(GoodCell):
    def forward(self, x, state):
        h, _ = super().forward(x, state)
        state.mul_(0.5)
        return h, h


class DetachesState(GoodCell):
    def forward(self, x, state):
        h = torch.tanh(self.w(x) + self.u(state.detach()))
        return h, h


class UnusedParameter(GoodCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.gate = nn.Parameter(torch.ones(hidden_size))


class UnsavedTensor(GoodCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.scale = torch.rand(hidden_size) + 0.5  # not a Parameter or buffer

    def forward(self, x, state):
        h = torch.tanh(self.w(x) + self.u(state)) * self.scale.to(x.dtype)
        return h, h


class RandomInEval(GoodCell):
    def forward(self, x, state):
        h, _ = super().forward(x, state)
        h = nn.functional.dropout(h, 0.5, training=True)
        return h, h


class CountsSteps(GoodCell):
    """Keeps time on self, so padded and unpadded runs differ."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.t = 0

    def forward(self, x, state):
        self.t += 1
        h = torch.tanh(self.w(x) + self.u(state) + 0.1 * self.t)
        return h, h


class DependsOnBatchSize(GoodCell):
    def forward(self, x, state):
        h = torch.tanh(self.w(x) + self.u(state) / x.size(0))
        return h, h


class WrongFusedPath(GoodCell):
    def forward_sequence(self, x, state, lengths=None):
        out = torch.tanh(self.w(x))
        return out, out[:, -1]


class HardcodedFloat32(GoodCell):
    def forward(self, x, state):
        h = torch.tanh(self.w(x) + self.u(state)).float()
        return h, h


@pytest.mark.parametrize(
    "cls,what,fix",
    [
        (IgnoresState, "ignores its state", "compute h from both x and the incoming state"),
        (
            WrongOutputShape,
            "forward returned h Tensor[3, 14]; expected Tensor[3, 7]",
            "shaped [batch, hidden_size]",
        ),
        (LeaksAcrossBatch, "mixes examples across the batch", "no mean/sum/max over dimension 0"),
        (IgnoresDevice, "the device argument is ignored", "pass device=device"),
        (NotBatchFirst, "must be batch-first", "torch.zeros(batch_size, hidden_size"),
        (ChangesStateInPlace, "changed the incoming state in place", "never modify `state`"),
        (DetachesState, "does not depend on the input at step 1", "not a detached"),
        (UnusedParameter, "parameter 'gate' gets no gradient", "register it as a buffer"),
        (UnsavedTensor, "some weights are not saved", "register every tensor"),
        (RandomInEval, "two identical forward calls gave different", "only when self.training"),
        (CountsSteps, "two identical forward calls gave different", "no counters"),
        (DependsOnBatchSize, "ends in a different state when run padded", "batch size"),
        (WrongFusedPath, "forward_sequence (lengths=None) differs", "delete forward_sequence"),
        (HardcodedFloat32, "with float64 parameters and inputs", "do not hard-code dtypes"),
    ],
)
def test_broken_cells_fail_with_what_and_how(cls, what, fix):
    with pytest.raises(CellContractError) as info:
        check_cell(cls)
    message = str(info.value)
    assert message.startswith(f"cell factory {cls.__qualname__}: ")
    assert what in message
    assert "How to fix:" in message and fix in message
    assert isinstance(info.value, AssertionError)  # pytest shows it as a failed test


def test_good_cell_passes_and_options_are_checked():
    check_cell(GoodCell)
    with pytest.raises(CellContractError, match="unknown option 'depth'"):
        check_cell(GoodCell, depth=2)


def test_factory_that_returns_no_module():
    with pytest.raises(CellContractError, match="(?s)not a torch.nn.Module.*subclass torch.nn"):
        check_cell(lambda input_size, hidden_size: lambda x, s: (x, s))


# ------------------------------------------------------------------ broken tokenizers


class Lowercases(CharTokenizer):
    def encode(self, text):
        return super().encode(text.lower())


class UsesPadId(CharTokenizer):
    def encode(self, text):
        return [i - 4 if i == 4 else i for i in super().encode(text)]


class ObjectState(CharTokenizer):
    def state_dict(self):
        return {"units": self.units[4:], "cache": object()}


@pytest.mark.parametrize(
    "cls,what",
    [
        (Lowercases, "decode(encode(s)) does not give s back"),
        (UsesPadId, "returned reserved ids [0]"),
        (ObjectState, "torch.load(weights_only=True)"),
    ],
)
def test_broken_tokenizers_fail_with_a_useful_message(cls, what):
    with pytest.raises(TokenizerContractError) as info:
        check_tokenizer(cls)
    assert what in str(info.value) and "How to fix:" in str(info.value)


def test_tokenizer_vocabulary_too_small_for_round_trip_is_explained():
    with pytest.raises(TokenizerContractError, match="pass a larger vocab_size"):
        check_tokenizer(registry.load("tokenizers", "word"), vocab_size=20)


# ------------------------------------------------------------------ broken search


def returns_bos(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis([BOS_ID, 5], -1.0)] for _ in range(src.size(0))]


def drops_a_sentence(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis([5], -1.0)] for _ in range(src.size(0) - 1)]


def ignores_max_length(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis([5] * 12, -1.0)] for _ in range(src.size(0))]


def tensor_tokens(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis(torch.tensor([5]), -1.0)] for _ in range(src.size(0))]


def no_length_limits(model, src, src_lengths, *, beam_size=2):
    return [[Hypothesis([5], -1.0)] for _ in range(src.size(0))]


@pytest.mark.parametrize(
    "strategy,what",
    [
        (returns_bos, "contain [2]"),
        (drops_a_sentence, "for a batch of 3 sentences"),
        (ignores_max_length, "12 tokens with max_length=3"),
        (tensor_tokens, "are not a list of ints"),
        (no_length_limits, "does not accept 'max_length', which seq2seq passes to every search"),
    ],
)
def test_broken_search_strategies_fail_with_a_useful_message(strategy, what):
    with pytest.raises(SearchContractError) as info:
        check_search(strategy)
    assert what in str(info.value) and "How to fix:" in str(info.value)
    assert f"_check_search_{id(strategy)}" not in {i.name for i in registry.available("search")}


def scores_as_tensors(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis([5], torch.tensor(-1.0))] for _ in range(src.size(0))]


def worst_first(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    return [[Hypothesis([5], -2.0), Hypothesis([6], -1.0)] for _ in range(src.size(0))]


def trains_the_model(model, src, src_lengths, *, max_length=200, max_length_ratio=2.0):
    model.train()
    return [[Hypothesis([5], -1.0)] for _ in range(src.size(0))]


@pytest.mark.parametrize(
    "strategy,clause,what",
    [
        (scores_as_tensors, "scores are floats", "is not a float"),
        (worst_first, "best first", "hypotheses are not best first"),
        (trains_the_model, "model left unchanged", "left in training mode"),
    ],
)
def test_each_search_clause_names_itself(strategy, clause, what):
    with pytest.raises(SearchContractError) as info:
        check_search(strategy)
    assert f"[{clause}]" in str(info.value) and what in str(info.value)


# ------------------------------------------------------------------ more tokenizer clauses


class NoEmptyText(CharTokenizer):
    def encode(self, text):
        return super().encode(text) or [4]


class KeepsSpecials(CharTokenizer):
    def decode(self, ids):
        return "".join(self.units[i] for i in ids if i != 1)


class WritesNothing(CharTokenizer):
    def save(self, directory):
        directory.mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize(
    "cls,clause",
    [
        (NoEmptyText, "empty text"),
        (KeepsSpecials, "decode skips specials"),
        (WritesNothing, "save writes files"),
    ],
)
def test_each_tokenizer_clause_names_itself(cls, clause):
    with pytest.raises(TokenizerContractError) as info:
        check_tokenizer(cls)
    assert f"[{clause}]" in str(info.value)


def test_cell_errors_name_their_clause():
    with pytest.raises(CellContractError, match=r"\[padding invariance\]"):
        check_cell(DependsOnBatchSize)
    assert [name for name, _ in CELL_CLAUSES][-1] == "fused equals step"


# ------------------------------------------------------------------ decoders


@pytest.mark.parametrize("name", ["fixed", "bahdanau", "luong"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_builtin_decoders_pass(name, cell):
    check_decoder(registry.load("decoders", name), cell=cell)


class GoodDecoder(nn.Module):
    """A fixed-vector decoder written the way a plugin author would; broken variants below."""

    def __init__(self, *, embedding_size, encoder_size, hidden_size, cell, cell_options,
                 num_layers, dropout, fused):  # fmt: skip
        super().__init__()
        self.output_size = hidden_size
        self.bridge = nn.Linear(encoder_size, hidden_size)
        self.rnn = nn.GRUCell(embedding_size, hidden_size)

    def init_state(self, enc):
        return torch.tanh(self.bridge(enc.summary))

    def step(self, emb, enc, state):
        h = self.rnn(emb, state)
        return h, h

    def forward(self, emb, enc, state):
        outputs = []
        for t in range(emb.size(1)):
            h, state = self.step(emb[:, t], enc, state)
            outputs.append(h)
        return torch.stack(outputs, 1)


class IgnoresSource(GoodDecoder):
    def init_state(self, enc):
        return enc.summary.new_zeros(enc.summary.size(0), self.output_size) + 0 * self.bridge.bias


class ForwardDiffersFromStep(GoodDecoder):
    def forward(self, emb, enc, state):
        return super().forward(emb, enc, state) * 2


class TimeMajorState(GoodDecoder):
    def init_state(self, enc):
        return super().init_state(enc).t()

    def step(self, emb, enc, state):
        h = self.rnn(emb, state.t())
        return h, h.t()


class CachesSentences(GoodDecoder):
    """Keeps the source summary on self: reordering sentences (beam search) breaks it."""

    def init_state(self, enc):
        self.summary = enc.summary
        return super().init_state(enc)

    def step(self, emb, enc, state):
        h = self.rnn(emb + self.summary[:, :1], state)
        return h, h


class NoOutputSize(GoodDecoder):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        del self.output_size


class BadAttention(GoodDecoder):
    def attention_weights(self, state):
        return torch.ones(state.size(0), 6, dtype=state.dtype)


@pytest.mark.parametrize(
    "cls,clause,what",
    [
        (NoOutputSize, "builds a module", "output_size is None"),
        (TimeMajorState, "state is batch-first", "batch-first"),
        (ForwardDiffersFromStep, "forward equals step", "differs from calling step"),
        (CachesSentences, "rows follow reordering", "reordering the sentences"),
        (BadAttention, "attention weights", "do not sum to 1"),
        (IgnoresSource, "gradient flow", "ignores the source"),
    ],
)
def test_broken_decoders_fail_with_the_clause(cls, clause, what):
    check_decoder(GoodDecoder)
    with pytest.raises(DecoderContractError) as info:
        check_decoder(cls)
    message = str(info.value)
    assert message.startswith(f"decoder factory {cls.__qualname__}: [{clause}]"), message
    assert what in message and "How to fix:" in message


def test_decoder_options_are_checked():
    with pytest.raises(DecoderContractError, match="unknown option 'depth'"):
        check_decoder(GoodDecoder, depth=2)
