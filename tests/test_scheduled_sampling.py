"""Scheduled sampling: the ε schedules and the token-by-token training forward."""

import math

import pytest
import torch
from omegaconf import OmegaConf

from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.tokenizers import BOS_ID, PAD_ID
from seq2seq.training.scheduled_sampling import (
    SCHEDULES,
    scheduled_sampling_logits,
    teacher_forcing_probability,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(decoder="fixed", cell="gru", dropout=0.0):
    torch.manual_seed(0)
    spec = ModelSpec(
        src_vocab_size=17,
        tgt_vocab_size=19,
        cell=cell,
        embedding_size=8,
        hidden_size=12,
        bidirectional=True,
        encoder_hidden_size=6,
        decoder=decoder,
        dropout=dropout,
    )
    return Seq2Seq(spec)


def inputs():
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, PAD_ID, PAD_ID], [13, 14, PAD_ID, 0, 0]])
    lengths = torch.tensor([5, 3, 2])
    tgt_in = torch.tensor(
        [[BOS_ID, 5, 6, 7, 8, 9], [BOS_ID, 10, 11, 12, PAD_ID, PAD_ID], [BOS_ID, 13] + [PAD_ID] * 4]
    )
    return src, lengths, tgt_in


def recorded_inputs(model, *args):
    """Run scheduled_sampling_logits(model, *args); return the logits and the token
    tensor the target embedding saw at each step."""
    seen = []
    hook = model.tgt_embedding.register_forward_hook(
        lambda _m, inputs, _out: seen.append(inputs[0].clone())
    )
    try:
        return scheduled_sampling_logits(model, *args), seen
    finally:
        hook.remove()


@pytest.mark.parametrize("decoder", ["fixed", "bahdanau", "luong"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_full_teacher_forcing_equals_the_teacher_forced_forward(decoder, cell):
    model = tiny_model(decoder, cell).eval()
    src, lengths, tgt_in = inputs()
    expected = model(src, lengths, tgt_in)
    got = scheduled_sampling_logits(model, src, lengths, tgt_in, 1.0, torch.Generator())
    assert got.shape == expected.shape == (3, 6, 19)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_without_teacher_the_inputs_are_the_models_own_argmax():
    model = tiny_model().eval()
    src, lengths, tgt_in = inputs()
    logits, seen = recorded_inputs(
        model, src, lengths, tgt_in, 0.0, torch.Generator().manual_seed(0)
    )
    assert len(seen) == tgt_in.size(1)  # one embedding call per step
    assert torch.equal(seen[0], tgt_in[:, 0])  # the first input is always BOS
    for t in range(1, tgt_in.size(1)):
        predicted = logits[:, t - 1].argmax(-1)
        gold = tgt_in[:, t]
        expected = torch.where(gold == PAD_ID, gold, predicted)  # padding stays padding
        assert torch.equal(seen[t], expected), t
    assert any(not torch.equal(seen[t], tgt_in[:, t]) for t in range(1, 6))


def test_predictions_are_detached_and_gradients_reach_every_step():
    model = tiny_model(dropout=0.2).train()
    src, lengths, tgt_in = inputs()
    logits = scheduled_sampling_logits(
        model, src, lengths, tgt_in, 0.0, torch.Generator().manual_seed(0)
    )
    logits[:, -1].sum().backward()
    assert model.src_embedding.weight.grad.abs().sum() > 0
    assert model.tgt_embedding.weight.grad.abs().sum() > 0


def test_mixing_follows_the_probability_and_the_generator():
    model = tiny_model().eval()
    src, lengths, tgt_in = inputs()
    src, lengths, tgt_in = (
        src[:1].repeat(400, 1),
        lengths[:1].repeat(400),
        tgt_in[:1].repeat(400, 1),
    )
    runs = []
    for _ in range(2):
        _, seen = recorded_inputs(
            model, src, lengths, tgt_in, 0.7, torch.Generator().manual_seed(3)
        )
        runs.append(torch.stack(seen, 1))
    assert torch.equal(runs[0], runs[1])  # the generator alone decides the coin flips
    greedy = scheduled_sampling_logits(model, src[:1], lengths[:1], tgt_in[:1], 0.0).argmax(-1)
    # Step 1 follows the gold BOS, so the model's candidate there is the same for every
    # row; where it differs from the gold token, 1 - ε of the rows take it.
    assert greedy[0, 0] != tgt_in[0, 1]
    fraction = float((runs[0][:, 1] != tgt_in[:, 1]).float().mean())
    assert abs(fraction - 0.3) < 0.08, fraction


def cfg(schedule, k=100.0, min_teacher=0.0):
    return OmegaConf.create({"schedule": schedule, "k": k, "min_teacher": min_teacher})


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_are_monotone_and_bounded(schedule):
    values = [teacher_forcing_probability(cfg(schedule, min_teacher=0.1), i) for i in range(2000)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert all(0.1 <= v <= 1.0 for v in values)
    if schedule == "none":
        assert set(values) == {1.0}
    else:
        assert values[-1] == pytest.approx(0.1)  # floors at min_teacher


def test_schedules_hit_their_documented_values():
    p = teacher_forcing_probability
    assert p(cfg("none"), 10**6) == 1.0
    assert p(None, 5) == 1.0
    assert p(cfg("linear"), 0) == 1.0
    assert p(cfg("linear"), 50) == pytest.approx(0.5)
    assert p(cfg("linear"), 100) == 0.0 and p(cfg("linear"), 500) == 0.0
    assert p(cfg("linear", min_teacher=0.25), 90) == 0.25
    assert p(cfg("exponential"), 0) == 1.0
    assert p(cfg("exponential"), 100) == pytest.approx(math.exp(-1))
    assert p(cfg("inverse_sigmoid"), 0) == pytest.approx(100 / 101)
    assert p(cfg("inverse_sigmoid"), round(100 * math.log(100))) == pytest.approx(0.5, abs=0.01)
    assert p(cfg("inverse_sigmoid"), 10**9) < 1e-100  # no overflow


@pytest.mark.parametrize(
    "bad,key",
    [
        (cfg("cosine"), "schedule: unknown schedule 'cosine'"),
        (cfg("linear", k=0), "scheduled_sampling.k"),
        (cfg("inverse_sigmoid", k=0.5), "scheduled_sampling.k"),
        (cfg("linear", min_teacher=1.5), "scheduled_sampling.min_teacher"),
    ],
)
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        teacher_forcing_probability(bad, 0)
