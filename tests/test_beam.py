"""Beam search: equal to greedy at size 1, batching-invariant, n-best, repeat blocking, coverage.

A tiny model trained briefly on real Multi30k decodes real test sentences; small
hand-built models pin down repeat blocking and the coverage penalty exactly.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
import torch

from seq2seq.commands.common import search_options
from seq2seq.commands.translate import build_parser
from seq2seq.data.batching import source_tensor
from seq2seq.nn.encoder import EncoderOutput
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import generate
from seq2seq.search.beam import repeated_ngram_mask
from seq2seq.tokenizers import EOS_ID
from seq2seq.translation.translator import Translator

TOL = 1e-5


@pytest.fixture(scope="module")
def translator(fixed_run: Path, one_thread) -> Translator:
    return Translator.from_checkpoint(fixed_run / "checkpoints" / "best.pt")


@pytest.fixture(scope="module")
def batch(translator: Translator, data_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """12 real test sentences of different lengths, padded into one batch."""
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        lines = [next(f).strip() for _ in range(40)]
    by_length: dict[int, list[int]] = {}
    for line in lines:
        ids = translator._encode(line)
        by_length.setdefault(len(ids), ids)
    encoded = list(by_length.values())[:12]
    assert len(encoded) == 12 and len({len(ids) for ids in encoded}) == 12
    return source_tensor(encoded)


@pytest.fixture(scope="module", params=["trained", "random"])
def model(request: pytest.FixtureRequest, translator: Translator):
    """The trained model (stops early, at EOS) and an untrained one (runs to its limits)."""
    if request.param == "trained":
        return translator.model
    torch.manual_seed(1)
    spec = ModelSpec(
        translator.model.spec.src_vocab_size,
        translator.model.spec.tgt_vocab_size,
        cell="lstm",
        embedding_size=16,
        hidden_size=24,
        num_layers=2,
        bidirectional=True,
        dropout=0.0,
    )
    return Seq2Seq(spec).eval()


def beam(translator: Translator | Seq2Seq, src, lengths, **options):
    options.setdefault("max_length", 50)
    model = translator.model if isinstance(translator, Translator) else translator
    return generate(model, src, lengths, "beam", **options)


def test_beam_of_one_equals_greedy(translator: Translator, batch) -> None:
    src, lengths = batch
    greedy = generate(translator.model, src, lengths, "greedy", max_length=30)
    one = beam(translator, src, lengths, beam_size=1, length_penalty=0.0, max_length=30)
    for g, b in zip(greedy, one, strict=True):
        assert b[0].tokens == g[0].tokens
        assert b[0].score == pytest.approx(g[0].score, abs=TOL)


@pytest.mark.parametrize(
    "options",
    [
        {"beam_size": 4, "nbest": 3},
        {"beam_size": 5, "nbest": 5, "length_penalty": 0.6, "min_length": 3},
        {"beam_size": 3, "nbest": 2, "no_repeat_ngram_size": 2},
    ],
)
def test_batched_equals_one_sentence_at_a_time(model: Seq2Seq, batch, options) -> None:
    src, lengths = batch
    batched = beam(model, src, lengths, **options)
    for i in range(src.size(0)):
        alone = beam(model, src[i : i + 1, : lengths[i]], lengths[i : i + 1], **options)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[i]], f"sentence {i}"
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[i]], abs=TOL), (
            f"sentence {i}"
        )


def test_nbest_is_sorted_and_distinct(translator: Translator, batch) -> None:
    src, lengths = batch
    for hyps in beam(translator, src, lengths, beam_size=6, nbest=6):
        assert len(hyps) == 6
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 6
        assert all(EOS_ID not in h.tokens for h in hyps)


def test_min_length_and_limits(translator: Translator, batch) -> None:
    src, lengths = batch
    for hyps in beam(translator, src, lengths, beam_size=3, nbest=3, min_length=5):
        assert all(len(h.tokens) >= 5 for h in hyps)
    for hyps in beam(translator, src, lengths, beam_size=3, nbest=3, max_length=4):
        assert all(len(h.tokens) <= 4 for h in hyps)


class RowCounter:
    """Wraps a model and records how many rows every decode_step computes."""

    def __init__(self, model) -> None:
        self.model, self.rows = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def decode_step(self, tokens, enc, state):
        self.rows.append(tokens.size(0))
        return self.model.decode_step(tokens, enc, state)


def test_finished_sentences_leave_the_batch(model: Seq2Seq, batch) -> None:
    src, lengths = batch
    counter = RowCounter(model)
    with torch.inference_mode():
        generate(counter, src, lengths, "beam", beam_size=3, max_length=60)
    assert counter.rows[0] == 3 * src.size(0)
    assert all(b <= a for a, b in zip(counter.rows, counter.rows[1:], strict=False))
    assert counter.rows[-1] < counter.rows[0]  # the short sentences were dropped
    assert all(rows % 3 == 0 for rows in counter.rows)


# ------------------------------------------------------------ hand-built models

VOCAB = 12


class ToyModel:
    """A fixed next-token distribution (5 > 6 > 7 > …, EOS unlikely): it repeats itself.

    Its "attention" puts 0.1 / source length on every real source token (not a
    distribution, to keep coverage below 1), so after L steps every source word
    has coverage 0.1 L / source length.
    """

    def __init__(self, with_attention: bool = True) -> None:
        logits = -torch.arange(VOCAB, dtype=torch.float) * 0.5
        logits = torch.roll(logits, 5)  # token 5 best, then 6, 7, …
        logits[EOS_ID] = -8.0
        self.logp = torch.log_softmax(logits, dim=-1)
        self.with_attention = with_attention

    def encode(self, src, lengths):
        mask = torch.arange(src.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
        zeros = torch.zeros(src.size(0), src.size(1), 1)
        return EncoderOutput(zeros, mask, zeros[:, 0], lengths)

    def init_state(self, enc):
        return (0.1 * enc.mask.float() / enc.lengths.unsqueeze(1).float(),)

    def decode_step(self, tokens, enc, state):
        return self.logp.expand(tokens.size(0), -1).clone(), state

    def attention(self, state):
        return state[0] if self.with_attention else None


def toy_generate(model: ToyModel, **options):
    src = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    lengths = torch.tensor([4, 2])
    return generate(model, src, lengths, "beam", max_length=12, **options)


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_blocking(n: int) -> None:
    free = toy_generate(ToyModel(), beam_size=4, nbest=4)
    assert any(len(set(ngrams(h.tokens, n))) < len(ngrams(h.tokens, n)) for h in free[0])
    for hyps in toy_generate(ToyModel(), beam_size=4, nbest=4, no_repeat_ngram_size=n):
        for hyp in hyps:
            grams = ngrams(hyp.tokens, n)
            assert len(grams) == len(set(grams)), f"repeated {n}-gram in {hyp.tokens}"


def test_repeated_ngram_mask_is_exact() -> None:
    history = torch.tensor([[5, 6, 5, 7, 5], [5, 5, 5, 5, 5]])
    banned = repeated_ngram_mask(history, 2, VOCAB)
    assert banned[0].nonzero().flatten().tolist() == [6, 7]  # "5 6" and "5 7" exist
    assert banned[1].nonzero().flatten().tolist() == [5]
    assert repeated_ngram_mask(history, 0, VOCAB) is None


def test_coverage_penalty_adds_the_gnmt_term() -> None:
    beta = 0.4
    plain = toy_generate(ToyModel(), beam_size=3, nbest=3, length_penalty=0.0)
    covered = toy_generate(
        ToyModel(), beam_size=3, nbest=3, length_penalty=0.0, coverage_penalty=beta
    )
    for source_length, p_hyps, c_hyps in zip((4, 2), plain, covered, strict=True):
        by_tokens = {tuple(h.tokens): h.score for h in p_hyps}
        for hyp in c_hyps:
            steps = min(len(hyp.tokens) + 1, 12)  # + EOS, unless it stopped at the limit
            coverage = min(0.1 * steps / source_length, 1.0)
            expected = by_tokens[tuple(hyp.tokens)] + beta * source_length * math.log(coverage)
            assert hyp.score == pytest.approx(expected, abs=1e-4)


def test_coverage_penalty_needs_attention() -> None:
    with pytest.raises(ValueError, match="coverage_penalty needs attention"):
        toy_generate(ToyModel(with_attention=False), beam_size=2, coverage_penalty=0.2)
    model = Seq2Seq(ModelSpec(20, 20, embedding_size=8, hidden_size=8, dropout=0.0)).eval()
    with pytest.raises(ValueError, match="coverage_penalty needs attention"):
        generate(model, torch.tensor([[5, 6]]), torch.tensor([2]), "beam", coverage_penalty=0.2)


def test_coverage_penalty_on_an_attention_decoder() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(
        ModelSpec(20, 20, embedding_size=8, hidden_size=8, dropout=0.0, decoder="bahdanau")
    ).eval()
    src, lengths = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2])
    plain = generate(model, src, lengths, "beam", beam_size=3, nbest=3, max_length=8)
    covered = generate(
        model, src, lengths, "beam", beam_size=3, nbest=3, max_length=8, coverage_penalty=1.0
    )
    for p_hyps, c_hyps in zip(plain, covered, strict=True):
        by_tokens = {tuple(h.tokens): h.score for h in p_hyps}
        for hyp in c_hyps:
            assert math.isfinite(hyp.score)
            if tuple(hyp.tokens) in by_tokens:  # log(min(cov, 1)) <= 0
                assert hyp.score <= by_tokens[tuple(hyp.tokens)] + 1e-6


def test_beam_rejects_bad_options() -> None:
    model = ToyModel()
    with pytest.raises(ValueError, match="nbest"):
        toy_generate(model, beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        toy_generate(model, no_repeat_ngram_size=-1)


# ------------------------------------------------------------ command-line flags


def test_cli_flags_reach_beam() -> None:
    args = build_parser().parse_args(
        "--checkpoint x --search beam --beam-size 4 --no-repeat-ngram-size 3 "
        "--coverage-penalty 0.2 --min-length 2".split()
    )
    options = search_options(args)
    assert options["no_repeat_ngram_size"] == 3
    assert options["coverage_penalty"] == 0.2
    assert options["min_length"] == 2 and options["beam_size"] == 4
    plain = search_options(build_parser().parse_args("--checkpoint x --search beam".split()))
    assert "no_repeat_ngram_size" not in plain and "coverage_penalty" not in plain


def test_cli_flag_for_another_strategy_is_an_error() -> None:
    args = build_parser().parse_args("--checkpoint x --no-repeat-ngram-size 2".split())
    with pytest.raises(ValueError, match="--no-repeat-ngram-size needs --search beam"):
        search_options(args)
