"""The CPU dropout mask: the distribution and scaling of torch's dropout, from a quarter
of the random draws."""

import pytest
import torch

from seq2seq.nn.dropout import LEVELS, SequenceDropout, dropout, keep_mask


def test_mask_keeps_one_minus_p_of_the_units_scaled_up():
    torch.manual_seed(0)
    mask = keep_mask((400, 500), 0.2, torch.zeros(1))
    dropped = round(0.2 * LEVELS)
    assert mask.unique().tolist() == pytest.approx([0.0, LEVELS / (LEVELS - dropped)])
    assert abs(float((mask > 0).float().mean()) - 0.8) < 0.005
    assert abs(float(mask.mean()) - 1.0) < 0.01  # the expectation is unchanged


def test_each_of_the_four_units_a_draw_serves_is_kept_as_often():
    """One 64-bit draw holds four 16-bit tests: none of them may lean (a draw of only
    non-negative numbers would keep every fourth unit always)."""
    torch.manual_seed(3)
    kept = (keep_mask((250_000, 4), 0.5, torch.zeros(1)) > 0).float().mean(0)
    assert ((kept - 0.5).abs() < 0.005).all(), kept


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_the_extremes_keep_all_or_nothing(p: float):
    mask = keep_mask((64, 33), p, torch.zeros(1))
    assert torch.equal(mask, torch.full((64, 33), 1.0 - p))


def test_mask_follows_the_input_dtype_and_the_seed():
    assert keep_mask((3, 4), 0.5, torch.zeros(1, dtype=torch.bfloat16)).dtype == torch.bfloat16
    torch.manual_seed(4)
    first = keep_mask((7, 9), 0.3, torch.zeros(1))
    torch.manual_seed(4)
    assert torch.equal(keep_mask((7, 9), 0.3, torch.zeros(1)), first)


def test_dropout_zeroes_or_scales_each_unit_and_its_gradient():
    torch.manual_seed(1)
    x = torch.randn(64, 256, requires_grad=True)
    y = dropout(x, 0.3)
    kept = y != 0
    scale = LEVELS / (LEVELS - round(0.3 * LEVELS))
    assert torch.allclose(y[kept], x[kept] * scale)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() * scale)


def test_sequence_dropout_steps_draw_a_fresh_mask_and_eval_is_the_identity():
    torch.manual_seed(2)
    drop = SequenceDropout(0.5).train()
    x = torch.ones(32, 64)
    assert not torch.equal(drop.step(x), drop.step(x))
    assert torch.equal(drop.eval().step(x), x)


def test_variational_dropout_drops_the_same_units_at_every_step():
    torch.manual_seed(5)
    drop = SequenceDropout(0.5, variational=True).train()
    out = drop(torch.ones(8, 6, 16))
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert 0 < int((out == 0).sum()) < out.numel()
