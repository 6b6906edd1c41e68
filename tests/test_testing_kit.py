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
    CellContractError,
    SearchContractError,
    TokenizerContractError,
    check_cell,
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
    "name,options", [("char", {}), ("word", {}), ("sentencepiece", {}), ("sentencepiece", {})]
)
def test_builtin_tokenizers_pass(name, options):
    check_tokenizer(registry.load("tokenizers", name), **options)


def test_sentencepiece_bpe_passes():
    check_tokenizer(registry.load("tokenizers", "sentencepiece"), model_type="bpe")


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
