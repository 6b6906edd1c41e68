"""Search strategies on a small random model: greedy, beam, batching and n-best."""

import pytest
import torch

from seq2seq import registry
from seq2seq.commands.common import search_options
from seq2seq.commands.translate import build_parser
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import Hypothesis, generate


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


# ------------------------------------------------------------ flags from signatures


def toy_strategy(
    model,
    src,
    src_lengths,
    *,
    max_length: int = 200,
    max_length_ratio: float = 2.0,
    width: int = 3,
    mode: str = "plain",
    temperature: float = 1.0,
):
    """A toy strategy whose options become command-line flags.

    Args:
        width: how many toy rows to keep.
        mode: the toy's mode.
    """
    return [[Hypothesis([5], -1.0)] for _ in range(src.size(0))]


def _check_toy(*, width: int, **_) -> None:
    if width < 1:
        raise ValueError(f"toy: width must be >= 1, got {width}")


toy_strategy.check_options = _check_toy


@pytest.fixture
def toy():
    registry.register("search", "toy", toy_strategy)
    yield
    registry.unregister("search", "toy")


def test_flags_come_from_the_strategy_signature(toy) -> None:
    parser = build_parser()
    text = " ".join(parser.format_help().split())
    assert "--width WIDTH how many toy rows to keep [--search toy]" in text
    assert "--mode MODE the toy's mode [--search toy]" in text
    lines = parser.format_help().splitlines()
    # shared by sample and toy: one flag
    assert sum(line.strip().startswith("--temperature") for line in lines) == 1
    assert "[--search sample, toy]" in text or "[--search sample, topk_sample, toy]" in text
    options = search_options(parser.parse_args("--checkpoint x --search toy --width 4".split()))
    assert options["width"] == 4 and isinstance(options["width"], int)
    assert "mode" not in options  # not given: the strategy's default applies
    with pytest.raises(SystemExit):  # the type hint is the flag's type
        parser.parse_args("--checkpoint x --search toy --width wide".split())


def test_flag_for_a_strategy_that_does_not_take_it_names_both(toy) -> None:
    args = build_parser().parse_args("--checkpoint x --search beam --width 2".split())
    with pytest.raises(ValueError, match="--width needs --search toy \\('beam' does not take it"):
        search_options(args)


def test_strategy_check_runs_before_any_model(toy) -> None:
    args = build_parser().parse_args("--checkpoint x --search toy --width 0".split())
    with pytest.raises(ValueError, match="toy: --width must be >= 1"):
        search_options(args)
    args = build_parser().parse_args("--checkpoint x --search toy --search-option wdth=2".split())
    with pytest.raises(registry.PluginOptionError, match="did you mean 'width'"):
        search_options(args)


def test_translate_help_lists_the_builtin_flags() -> None:
    text = build_parser().format_help()
    for flag in (
        "--beam-size", "--nbest", "--length-penalty", "--min-length", "--no-repeat-ngram-size",
        "--coverage-penalty", "--temperature", "--top-k", "--top-p", "--seed",
    ):  # fmt: skip
        assert f"  {flag} " in text, flag
