"""The built-in `sample` strategy: seeded and reproducible, top-k=1 is greedy, CLI flags."""

from __future__ import annotations

import pytest
import torch

from seq2seq.commands.common import search_options
from seq2seq.commands.translate import build_parser
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import generate
from seq2seq.search.sample import filter_logits, sample_search
from seq2seq.testing import check_search


@pytest.fixture(scope="module")
def model_and_batch(one_thread):
    torch.manual_seed(0)
    spec = ModelSpec(40, 60, cell="lstm", embedding_size=16, hidden_size=24, dropout=0.0)
    model = Seq2Seq(spec).eval()
    src = torch.randint(4, 40, (6, 7))
    lengths = torch.tensor([7, 5, 6, 2, 7, 3])
    return model, src, lengths


def sample(model_and_batch, **options):
    model, src, lengths = model_and_batch
    return generate(model, src, lengths, "sample", max_length=20, **options)


def tokens(result) -> list[list[int]]:
    return [hyps[0].tokens for hyps in result]


@pytest.mark.parametrize(
    "options", [{}, {"temperature": 0.5, "top_k": 5}, {"top_p": 0.8, "seed": 3}]
)
def test_contract(options) -> None:
    check_search(sample_search, **options)


def test_same_seed_same_output(model_and_batch) -> None:
    first = sample(model_and_batch, seed=7, temperature=1.2)
    torch.rand(10)  # the global RNG is not what the seed controls
    again = sample(model_and_batch, seed=7, temperature=1.2)
    assert tokens(first) == tokens(again)
    assert [h[0].score for h in first] == [h[0].score for h in again]


def test_different_seeds_differ(model_and_batch) -> None:
    outputs = {str(tokens(sample(model_and_batch, seed=seed))) for seed in range(4)}
    assert len(outputs) > 1


def test_seed_leaves_the_global_rng_alone(model_and_batch) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sample(model_and_batch, seed=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "options", [{"top_k": 1}, {"top_k": 1, "temperature": 3.0}, {"top_p": 1e-6}]
)
def test_greedy_limits(model_and_batch, options) -> None:
    greedy = generate(*model_and_batch, "greedy", max_length=20)
    drawn = sample(model_and_batch, seed=5, **options)
    assert tokens(drawn) == tokens(greedy)
    for g, d in zip(greedy, drawn, strict=True):
        assert d[0].score == pytest.approx(g[0].score, abs=1e-5)


def test_filter_logits() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda out: torch.isfinite(out[0]).nonzero().flatten().tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == [0, 1]
    assert kept(filter_logits(logits, top_p=0.7)) == [0, 1]  # 0.5 < 0.7 <= 0.8
    assert kept(filter_logits(logits, top_p=0.5)) == [0]
    assert kept(filter_logits(logits)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "options, message",
    [({"temperature": 0.0}, "temperature"), ({"top_k": -1}, "top_k"), ({"top_p": 0.0}, "top_p")],
)
def test_bad_options(model_and_batch, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        sample(model_and_batch, **options)


def test_cli_flags_reach_sample() -> None:
    args = build_parser().parse_args(
        "--checkpoint x --search sample --temperature 0.7 --top-k 20 --top-p 0.9 --seed 4".split()
    )
    options = search_options(args)
    assert {k: options[k] for k in ("temperature", "top_k", "top_p", "seed")} == {
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.9,
        "seed": 4,
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        ("--search beam --temperature 0.7", "--temperature needs --search sample"),
        ("--top-p 0.9", "--top-p needs --search sample"),
        ("--search sample --temperature 0", "temperature must be > 0"),
        ("--search sample --top-p 1.5", "--top-p must be in"),
        ("--search sample --nbest 2", "--nbest needs --search beam"),
    ],
)
def test_cli_rejects_inconsistent_flags(argv: str, message: str) -> None:
    args = build_parser().parse_args(["--checkpoint", "x", *argv.split()])
    with pytest.raises(ValueError, match=message):
        search_options(args)
