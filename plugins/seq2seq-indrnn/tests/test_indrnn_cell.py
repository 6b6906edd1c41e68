"""The IndRNN cell honours seq2seq's cell contract, with every option."""

import pytest
import torch
from seq2seq_indrnn import IndRNNCell, indrnn

from seq2seq.nn.recurrent import CompiledStep, RecurrentStack, step_loop
from seq2seq.testing import check_cell


@pytest.mark.parametrize(
    "options",
    [{}, {"activation": "tanh"}, {"recurrent_max": None}, {"recurrent_max": 0.5}],
)
def test_contract(options):
    check_cell(indrnn, **options)


def test_matches_the_paper_equation():
    torch.manual_seed(0)
    cell = indrnn(3, 4, recurrent_max=None)
    x, h_prev = torch.randn(2, 3), torch.randn(2, 4)
    h, state = cell(x, h_prev)
    expected = torch.relu(x @ cell.input.weight.T + cell.input.bias + cell.recurrent * h_prev)
    torch.testing.assert_close(h, expected)
    assert state is h


def test_recurrent_weights_are_clipped():
    cell = indrnn(3, 4, recurrent_max=0.5)
    with torch.no_grad():
        cell.recurrent.fill_(3.0)
    h, _ = cell(torch.zeros(1, 3), torch.ones(1, 4))
    torch.testing.assert_close(h, torch.relu(cell.input.bias + 0.5).unsqueeze(0))


def test_bad_activation_is_reported():
    with pytest.raises(ValueError, match="activation must be one of relu, tanh"):
        indrnn(3, 4, activation="gelu")


def test_scripted_step_gives_the_same_numbers():
    torch.manual_seed(0)
    cell = IndRNNCell(5, 6)
    compiled = CompiledStep(cell, "script")
    assert compiled.kind == "script"
    x = torch.randn(3, 7, 5)
    lengths = torch.tensor([7, 4, 1])
    plain = step_loop(cell, x, cell.initial_state(3), lengths)
    fast = step_loop(cell, x, cell.initial_state(3), lengths, compiled)
    torch.testing.assert_close(fast[0], plain[0], rtol=0, atol=0)
    torch.testing.assert_close(fast[1], plain[1], rtol=0, atol=0)


def test_runs_bidirectional_and_stacked():
    stack = RecurrentStack(indrnn, 4, 6, num_layers=2, bidirectional=True)
    out, finals = stack(torch.randn(2, 5, 4), torch.tensor([5, 2]))
    assert out.shape == (2, 5, 12)
    assert out[1, 2:].abs().max() == 0
    assert len(finals) == 2 and len(finals[0]) == 2
