"""`check_search`: the `seq2seq.search` contract (`seq2seq.contracts.SearchStrategy`)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seq2seq import registry
from seq2seq.contracts import BOS_ID, EOS_ID, PAD_ID
from seq2seq.search import Hypothesis, generate, length_limits
from seq2seq.testing.common import Failure, SearchContractError, name_of, single_threaded

SRC = torch.tensor(
    [[5, 6, 7, 8, 9], [10, 11, 12, PAD_ID, PAD_ID], [13, PAD_ID, PAD_ID, PAD_ID, PAD_ID]]
)
LENGTHS = torch.tensor([5, 3, 1])
LIMITS = ((30, 2.0), (3, 2.0), (30, 0.0))  # (max_length, max_length_ratio)


def tiny_model(cell: str, seed: int) -> Any:
    """A small random Seq2Seq that likes pad and bos: a strategy that lets them through shows."""
    from seq2seq.nn.model import ModelSpec, Seq2Seq

    torch.manual_seed(seed)
    spec = ModelSpec(
        src_vocab_size=19,
        tgt_vocab_size=23,
        cell=cell,
        embedding_size=8,
        hidden_size=12,
        dropout=0.0,
    )
    model = Seq2Seq(spec).eval()
    with torch.no_grad():
        model.output_layer.bias[PAD_ID] += 4.0
        model.output_layer.bias[BOS_ID] += 4.0
    return model


@dataclass
class Run:
    """One call of the strategy: its limits and what it returned."""

    max_length: int
    ratio: float
    limits: list[int]
    result: Any


class SearchUnderTest:
    def __init__(self, strategy: Callable[..., Any], options: dict[str, Any]) -> None:
        self.strategy, self.options = strategy, options
        self.fail = Failure(SearchContractError, f"search strategy {name_of(strategy)}")
        self.name = f"_check_search_{id(strategy)}"
        self.model: Any = None
        self.params: dict[str, Tensor] = {}
        self.runs: list[Run] = []

    def generate(self, src: Tensor, lengths: Tensor, max_length: int, ratio: float) -> Any:
        try:
            return generate(
                self.model,
                src,
                lengths,
                self.name,
                max_length=max_length,
                max_length_ratio=ratio,
                **self.options,
            )
        except registry.PluginOptionError as exc:
            raise self.fail(
                str(exc),
                "a strategy is strategy(model, src, src_lengths, *, max_length, "
                "max_length_ratio, **your_options); pass only options it accepts.",
            ) from None
        except Exception as exc:
            raise self.fail(
                f"raised {type(exc).__name__}: {exc} (on a tiny {self.model.spec.cell} model)",
                "use model.encode, model.init_state and model.decode_step; reorder states "
                "with seq2seq.nn.recurrent.map_state (states may be tuples).",
            ) from exc

    def hypotheses(self):
        """(run, sentence index, hypothesis) for every hypothesis returned."""
        for run in self.runs:
            for index, hyps in enumerate(run.result):
                for hyp in hyps:
                    yield run, index, hyp


def runs_with_the_framework_arguments(t: SearchUnderTest) -> None:
    t.runs = [
        Run(m, r, length_limits(LENGTHS, m, r).tolist(), t.generate(SRC, LENGTHS, m, r))
        for m, r in LIMITS
    ]


def one_list_per_sentence(t: SearchUnderTest) -> None:
    for run in t.runs:
        result = run.result
        if not isinstance(result, list) or len(result) != SRC.size(0):
            raise t.fail(
                f"returned {type(result).__name__} of length "
                f"{len(result) if hasattr(result, '__len__') else '?'} for a batch of "
                f"{SRC.size(0)} sentences.",
                "return a list with one list of Hypothesis per source sentence, in input order.",
            )
        for index, hyps in enumerate(result):
            if not isinstance(hyps, list) or not hyps:
                raise t.fail(
                    f"sentence {index}: got {hyps!r}, expected a non-empty list of Hypothesis.",
                    "return at least one Hypothesis per sentence (possibly with no tokens).",
                )
            for hyp in hyps:
                if not isinstance(hyp, Hypothesis):
                    raise t.fail(
                        f"sentence {index}: {hyp!r} is not a seq2seq.search.Hypothesis.",
                        "return Hypothesis(tokens=[...], score=float).",
                    )


def tokens_are_ints(t: SearchUnderTest) -> None:
    for _, index, hyp in t.hypotheses():
        tokens = hyp.tokens
        if not isinstance(tokens, list) or not all(
            isinstance(tok, int) and not isinstance(tok, bool) for tok in tokens
        ):
            raise t.fail(
                f"sentence {index}: tokens {tokens!r} are not a list of ints.",
                "convert with tensor.tolist() (not a tensor, not numpy ints).",
            )


def no_special_tokens(t: SearchUnderTest) -> None:
    vocab = t.model.spec.tgt_vocab_size
    for _, index, hyp in t.hypotheses():
        bad = sorted(
            {tok for tok in hyp.tokens if tok in (PAD_ID, BOS_ID, EOS_ID) or not 0 <= tok < vocab}
        )
        if bad:
            raise t.fail(
                f"sentence {index}: tokens {hyp.tokens} contain {bad}: pad ({PAD_ID}), bos "
                f"({BOS_ID}), eos ({EOS_ID}) or ids outside the vocabulary of {vocab}.",
                "start from BOS without returning it, stop at EOS and drop it, never emit pad "
                "or bos (set their log-probabilities to -inf).",
            )


def length_limits_respected(t: SearchUnderTest) -> None:
    for run, index, hyp in t.hypotheses():
        if len(hyp.tokens) > run.limits[index]:
            raise t.fail(
                f"sentence {index}: {len(hyp.tokens)} tokens with max_length={run.max_length}, "
                f"max_length_ratio={run.ratio} (limit {run.limits[index]}).",
                "stop after seq2seq.search.length_limits(src_lengths, max_length, "
                "max_length_ratio) tokens per sentence.",
            )


def scores_are_floats(t: SearchUnderTest) -> None:
    for _, index, hyp in t.hypotheses():
        if not isinstance(hyp.score, float) or math.isnan(hyp.score):
            raise t.fail(
                f"sentence {index}: score {hyp.score!r} is not a float.",
                "return the log-probability as a Python float (float(t)).",
            )


def best_first(t: SearchUnderTest) -> None:
    for run in t.runs:
        for index, hyps in enumerate(run.result):
            scores = [h.score for h in hyps]
            if scores != sorted(scores, reverse=True):
                raise t.fail(
                    f"sentence {index}: hypotheses are not best first: scores {scores}.",
                    "sort each sentence's hypotheses by score, highest first.",
                )


def batch_of_one(t: SearchUnderTest) -> None:
    if len(t.generate(SRC[:1], LENGTHS[:1], 10, 2.0)) != 1:
        raise t.fail(
            "a batch of one sentence did not give one result.",
            "return one list of hypotheses per sentence, also for a single sentence.",
        )


def model_left_unchanged(t: SearchUnderTest) -> None:
    if t.model.training:
        raise t.fail(
            "the model was left in training mode.",
            "do not call model.train(); generation runs in eval mode.",
        )
    changed = [k for k, v in t.model.state_dict().items() if not torch.equal(v, t.params[k])]
    if changed:
        raise t.fail(
            f"the model's weights changed: {changed[:3]}.",
            "do not modify the model during search.",
        )


SEARCH_CLAUSES: list[tuple[str, Callable[[SearchUnderTest], None]]] = [
    ("takes the framework arguments", runs_with_the_framework_arguments),
    ("one list of hypotheses per sentence", one_list_per_sentence),
    ("tokens are ints", tokens_are_ints),
    ("no special tokens", no_special_tokens),
    ("length limits", length_limits_respected),
    ("scores are floats", scores_are_floats),
    ("best first", best_first),
    ("batch of one", batch_of_one),
    ("model left unchanged", model_left_unchanged),
]
"""The search contract's clauses, in the order `check_search` runs them (per tiny model)."""


@single_threaded
def check_search(strategy: Callable[..., Any], **options: Any) -> None:
    """Check a `seq2seq.search` strategy on tiny random models (GRU and LSTM).

    Calls `strategy(model, src, src_lengths, max_length=, max_length_ratio=, **options)`
    through `seq2seq.search.generate` (as translation does) and runs every clause of
    `SEARCH_CLAUSES`: one list of hypotheses per sentence, each non-empty, best
    first by score; tokens are Python ints in [4, vocab) or unk (no pad, bos or
    eos); lengths respect max_length and max_length_ratio; scores are floats; a
    batch of one works; the model is left in eval mode with unchanged parameters.
    """
    t = SearchUnderTest(strategy, options)
    registry.register("seq2seq.search", t.name, strategy)
    try:
        for cell in ("gru", "lstm"):
            t.model = tiny_model(cell, seed=0)
            t.params = copy.deepcopy(t.model.state_dict())
            t.fail.run(SEARCH_CLAUSES, t)
    finally:
        registry.unregister("seq2seq.search", t.name)
