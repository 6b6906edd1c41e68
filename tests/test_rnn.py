"""The step loop, its masking and reversal, and the fused path checked equal to it."""

import pytest
import torch

from seq2seq import registry
from seq2seq.rnn import RecurrentStack, reverse_padded, step_loop
from seq2seq.testing import BUILTIN_CELL_SETTINGS

leaves = torch.utils._pytree.tree_leaves

CELLS = BUILTIN_CELL_SETTINGS


def test_reverse_padded_reverses_within_length_only():
    x = torch.arange(8).view(2, 4, 1).float()
    out = reverse_padded(x, torch.tensor([4, 2]))
    assert out[0, :, 0].tolist() == [3, 2, 1, 0]
    assert out[1, :, 0].tolist() == [5, 4, 6, 7]
    assert torch.equal(reverse_padded(out, torch.tensor([4, 2])), x)


@pytest.mark.parametrize("name,options", CELLS)
def test_fused_path_equals_step_loop(name, options):
    torch.manual_seed(0)
    factory = registry.load("seq2seq.cells", name)
    stack = RecurrentStack(factory, 6, 8, num_layers=2, bidirectional=True, cell_options=options)
    x = torch.randn(4, 7, 6, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    fused_out, fused_state = stack(x, lengths)
    (fused_grad,) = torch.autograd.grad(fused_out.sum(), x)
    stack.fused = False
    plain_out, plain_state = stack(x, lengths)
    (plain_grad,) = torch.autograd.grad(plain_out.sum(), x)
    torch.testing.assert_close(fused_out, plain_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused_grad, plain_grad, atol=1e-5, rtol=1e-5)
    for a, b in zip(leaves(fused_state), leaves(plain_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,options", CELLS)
def test_padding_leaves_outputs_and_state_alone(name, options):
    """A padded row gives exactly what the same row gives unpadded."""
    torch.manual_seed(0)
    stack = RecurrentStack(
        registry.load("seq2seq.cells", name), 3, 5, bidirectional=True, cell_options=options
    )
    x = torch.randn(2, 6, 3)
    out, state = stack(x, torch.tensor([6, 4]))
    alone, alone_state = stack(x[1:, :4], torch.tensor([4]))
    torch.testing.assert_close(out[1:, :4], alone, atol=1e-6, rtol=1e-5)
    assert out[1, 4:].abs().max() == 0
    for padded, single in zip(leaves(state), leaves(alone_state), strict=True):
        torch.testing.assert_close(padded[1:], single, atol=1e-6, rtol=1e-5)


def test_step_loop_masks_state_updates():
    cell = registry.load("seq2seq.cells", "gru")(2, 3)
    x = torch.randn(1, 5, 2)
    _, final_short = step_loop(cell, x, cell.initial_state(1), torch.tensor([2]))
    _, final_two = step_loop(cell, x[:, :2], cell.initial_state(1), None)
    torch.testing.assert_close(final_short, final_two)
