"""The CPU dropout mask: the same distribution and scaling as torch's dropout."""

import torch

from seq2seq.nn.dropout import SequenceDropout, dropout, keep_mask


def test_mask_keeps_one_minus_p_of_the_units_scaled_up():
    torch.manual_seed(0)
    mask = keep_mask((400, 500), 0.2, torch.zeros(1))
    assert set(mask.unique().tolist()) == {0.0, 1.25}
    assert abs(float((mask > 0).float().mean()) - 0.8) < 0.005
    assert abs(float(mask.mean()) - 1.0) < 0.01  # the expectation is unchanged


def test_mask_follows_the_input_dtype():
    assert keep_mask((3, 4), 0.5, torch.zeros(1, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_dropout_zeroes_or_scales_each_unit_and_its_gradient():
    torch.manual_seed(1)
    x = torch.randn(64, 256, requires_grad=True)
    y = dropout(x, 0.3)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.7)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.7)


def test_sequence_dropout_steps_draw_a_fresh_mask_and_eval_is_the_identity():
    torch.manual_seed(2)
    drop = SequenceDropout(0.5).train()
    x = torch.ones(32, 64)
    assert not torch.equal(drop.step(x), drop.step(x))
    assert torch.equal(drop.eval().step(x), x)
