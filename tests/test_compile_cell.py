"""The opt-in compiled step for custom cells (`model.compile_cell`): same numbers as the plain
step loop, a clear error when forced onto an unscriptable cell, and a safe fallback."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.nn.recurrent import CompiledStep, RecurrentStack, step_loop
from seq2seq.search import generate

pytestmark = pytest.mark.usefixtures("one_thread")


class MinimalRNN(nn.Module):
    """A scriptable custom cell with a tuple state (h, running sum)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.w = nn.Linear(input_size, hidden_size)
        self.u = nn.Linear(hidden_size, hidden_size)
        self.gate = nn.Linear(hidden_size, hidden_size)

    def initial_state(self, batch_size, device=None, dtype=None):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return zeros, zeros.clone()

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, total = state
        z = torch.sigmoid(self.gate(h))
        h = z * h + (1 - z) * torch.tanh(self.w(x) + self.u(h))
        return h, (h, total + h)


class Unscriptable(MinimalRNN):
    def forward(self, x, state):
        h, total = state
        parts = {"x": self.w(x), "h": self.u(h)}  # a dict of mixed use: fine in Python
        h = torch.tanh(sum(parts.values()))
        return h, (h, total + h)


@pytest.fixture
def custom_cell():
    registry.register("cells", "minimal_rnn_test", MinimalRNN)
    yield "minimal_rnn_test"
    registry.unregister("cells", "minimal_rnn_test")


def test_scripted_step_equals_plain_step_loop():
    torch.manual_seed(0)
    cell = MinimalRNN(4, 6)
    compiled = CompiledStep(cell, True)
    assert compiled.kind == "script"
    x = torch.randn(3, 5, 4, requires_grad=True)
    lengths = torch.tensor([5, 2, 4])
    plain_out, plain_state = step_loop(cell, x, cell.initial_state(3), lengths)
    (plain_grad,) = torch.autograd.grad(plain_out.sum() + plain_state[1].sum(), x)
    fast_out, fast_state = step_loop(cell, x, cell.initial_state(3), lengths, compiled)
    (fast_grad,) = torch.autograd.grad(fast_out.sum() + fast_state[1].sum(), x)
    torch.testing.assert_close(fast_out, plain_out)
    torch.testing.assert_close(fast_state, plain_state)
    torch.testing.assert_close(fast_grad, plain_grad)


def test_model_with_compiled_cells_gives_the_same_numbers(custom_cell):
    spec = dict(
        src_vocab_size=20,
        tgt_vocab_size=21,
        cell=custom_cell,
        embedding_size=8,
        hidden_size=10,
        bidirectional=True,
        num_layers=2,
        dropout=0.0,
    )
    plain = Seq2Seq(ModelSpec(**spec))
    compiled = Seq2Seq(ModelSpec(**spec, compile_cell=True))
    compiled.load_state_dict(plain.state_dict())  # nothing extra is saved for compilation
    assert plain.state_dict().keys() == compiled.state_dict().keys()
    src = torch.randint(4, 20, (3, 6))
    lengths = torch.tensor([6, 3, 1])
    tgt = torch.randint(4, 21, (3, 5))
    torch.testing.assert_close(compiled(src, lengths, tgt), plain(src, lengths, tgt))
    stacks = [m for m in compiled.modules() if isinstance(m, RecurrentStack)]
    assert {s._compiled[id(s.layers[0][0])].kind for s in stacks} == {"script"}
    compiled.eval()
    plain.eval()
    for strategy in ("greedy", "beam"):
        a = generate(plain, src, lengths, strategy, max_length=8)
        b = generate(compiled, src, lengths, strategy, max_length=8)
        assert [[h.tokens for h in s] for s in a] == [[h.tokens for h in s] for s in b]


def test_forcing_script_on_an_unscriptable_cell_explains():
    with pytest.raises(ValueError, match="not scriptable.*compile_cell=compile"):
        CompiledStep(Unscriptable(3, 4), "script")


def test_auto_falls_back_to_plain_when_torch_compile_fails(monkeypatch, caplog):
    def failing_compile(module, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
    cell = Unscriptable(3, 4)
    compiled = CompiledStep(cell, "auto")
    assert compiled.kind == "compile"
    x, state = torch.randn(2, 3), cell.initial_state(2)
    with caplog.at_level(logging.WARNING, logger="seq2seq.nn.recurrent"):
        h, _ = compiled(x, state)
    assert "torch.compile failed for Unscriptable (RuntimeError: no C++ compiler)" in caplog.text
    assert compiled.kind == "plain"
    torch.testing.assert_close(h, cell(x, state)[0])


def test_bad_mode_is_reported():
    with pytest.raises(ValueError, match="compile_cell must be false, true or one of"):
        CompiledStep(MinimalRNN(3, 4), "fast")
    with pytest.raises(ValueError, match="compile_cell must be false, true or one of"):
        Seq2Seq(ModelSpec(10, 10, embedding_size=4, hidden_size=4, compile_cell="fast"))


@pytest.mark.slow
def test_torch_compile_path_equals_plain():
    """The real torch.compile (inductor; needs a C++ compiler on CPU): compiles for seconds."""
    torch.manual_seed(0)
    cell = Unscriptable(4, 6)
    compiled = CompiledStep(cell, "compile")
    x = torch.randn(3, 4, 4)
    lengths = torch.tensor([4, 2, 3])
    plain = step_loop(cell, x, cell.initial_state(3), lengths)
    fast = step_loop(cell, x, cell.initial_state(3), lengths, compiled)
    assert compiled.kind == "compile", "torch.compile fell back to the plain path"
    torch.testing.assert_close(fast[0], plain[0])
    torch.testing.assert_close(fast[1], plain[1])


def test_the_custom_cell_itself_honours_the_contract():
    from seq2seq.testing import check_cell

    check_cell(MinimalRNN)
