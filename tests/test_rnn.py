"""The step loop, its masking and reversal, and the fused path checked equal to it."""

import pytest
import torch
from torch.nn import functional as F

from seq2seq import registry
from seq2seq.nn.recurrent import RecurrentStack, reverse_padded, step_loop
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


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_gate_math_for_cuda_equals_the_fused_cell(name: str) -> None:
    """The plain gate math that CUDA uses for a per-row input bias (its fused kernels take
    only a vector bias) equals torch's cell: outputs and gradients."""
    torch.manual_seed(0)
    cell = registry.load("cells", name)(6, 5)
    x, bias = torch.randn(3, 4), torch.randn(3, cell.rnn.weight_ih_l0.size(0))
    zeros = cell.initial_state(3)
    state = tuple(map(torch.randn_like, zeros)) if isinstance(zeros, tuple) else torch.randn(3, 5)
    w_ih, w_hh, _, b_hh = cell._weights()
    results = []
    for plain in (False, True):
        cell.zero_grad()
        w_rest = w_ih[:, 2:]
        if plain:
            h, new = cell._cell_from_input_gates(F.linear(x, w_rest) + bias, state, w_hh, b_hh)
        else:
            h, new = cell._cell(x, state, w_rest, w_hh, bias, b_hh)
        parts = new if isinstance(new, tuple) else (new,)
        sum(p.pow(2).sum() for p in (h, *parts)).backward()
        results.append(
            ([h, *parts], [p.grad.clone() for p in cell.parameters() if p.grad is not None])
        )
    (fused, fused_grads), (plain, plain_grads) = results
    for a, b in zip([*fused, *fused_grads], [*plain, *plain_grads], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_split_input_under_bf16_autocast_equals_the_whole_input(name: str) -> None:
    """Under bf16 autocast the split projection's other weights are cast once per
    sequence (not at every step), and three steps over [known; rest] still give what the
    cell gives on the whole input: outputs and weight gradients, to bf16 precision."""
    torch.manual_seed(0)
    cell = registry.load("cells", name)(6, 5)
    known, rest = torch.randn(3, 3, 2), torch.randn(3, 3, 4)
    results = []
    for split in (True, False):
        cell.zero_grad()
        state, outputs = cell.initial_state(3), []
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if split:
                bias, w_rest = cell.known_input(known)
                assert w_rest.dtype == torch.bfloat16
            for t in range(3):
                if split:
                    h, state = cell.step_with_input_bias(rest[:, t], state, bias[:, t], w_rest)
                else:
                    h, state = cell(torch.cat([known[:, t], rest[:, t]], -1), state)
                outputs.append(h.float())
        torch.stack(outputs).pow(2).sum().backward()
        results.append([torch.stack(outputs), *(p.grad.clone() for p in cell.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)
