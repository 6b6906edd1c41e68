"""Search strategies on a small random model: greedy, beam, batching and n-best."""

import pytest
import torch

from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import generate


@pytest.fixture(scope="module")
def model_and_batch():
    torch.manual_seed(3)
    spec = ModelSpec(
        src_vocab_size=40,
        tgt_vocab_size=30,
        cell="lstm",
        embedding_size=16,
        hidden_size=24,
        bidirectional=True,
        num_layers=2,
        dropout=0.0,
    )
    model = Seq2Seq(spec).eval()
    src = torch.randint(4, 40, (5, 9))
    lengths = torch.tensor([9, 4, 7, 1, 6])
    return model, src, lengths


def test_beam_of_one_equals_greedy(model_and_batch):
    model, src, lengths = model_and_batch
    greedy = generate(model, src, lengths, "greedy", max_length=25)
    beam = generate(model, src, lengths, "beam", beam_size=1, length_penalty=0.0, max_length=25)
    assert [g[0].tokens for g in greedy] == [b[0].tokens for b in beam]
    for g, b in zip(greedy, beam, strict=True):
        assert g[0].score == pytest.approx(b[0].score, abs=1e-4)


def test_batched_beam_equals_one_sentence_at_a_time(model_and_batch):
    model, src, lengths = model_and_batch
    batched = generate(model, src, lengths, "beam", beam_size=4, nbest=3, max_length=20)
    for i in range(src.size(0)):
        single = generate(
            model,
            src[i : i + 1, : lengths[i]],
            lengths[i : i + 1],
            "beam",
            beam_size=4,
            nbest=3,
            max_length=20,
        )[0]
        assert [h.tokens for h in single] == [h.tokens for h in batched[i]]
        assert [h.score for h in single] == pytest.approx([h.score for h in batched[i]], abs=1e-4)


def test_nbest_is_sorted_and_distinct(model_and_batch):
    model, src, lengths = model_and_batch
    for hyps in generate(model, src, lengths, "beam", beam_size=5, nbest=5, max_length=20):
        assert len(hyps) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5


def test_length_limits_are_respected(model_and_batch):
    model, src, lengths = model_and_batch
    for strategy, options in (("greedy", {}), ("beam", {"beam_size": 3})):
        hyps = generate(model, src, lengths, strategy, max_length=4, **options)
        assert all(len(h[0].tokens) <= 4 for h in hyps)


def test_beam_rejects_nbest_above_beam(model_and_batch):
    model, src, lengths = model_and_batch
    with pytest.raises(ValueError, match="nbest"):
        generate(model, src, lengths, "beam", beam_size=2, nbest=3)
