"""Beam search, batched over sentences × beams.

Every step is a handful of tensor operations over all live sentences at once:
there is no Python loop over sentences or hypotheses until the very end. A
sentence leaves the batch (encoder output, decoder state and bookkeeping all
shrink) as soon as it is done, so later steps only compute what is still live.

Scores: the GNMT length penalty ((5 + len) / 6) ** alpha divides the log-probability,
where len counts every scored token (EOS included); with `coverage_penalty` beta > 0
the GNMT coverage penalty beta * Σ_source log(min(attention mass, 1)) is added.
Both are applied to finished hypotheses (they rank the n-best list). Optional
n-gram repeat blocking (`no_repeat_ngram_size`) forbids any n-gram twice in a
hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from seq2seq.nn.recurrent import map_state
from seq2seq.search import Hypothesis, length_limits
from seq2seq.search.options import check_beam_options
from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID

NEG_INF = -float("inf")
COVERAGE_FLOOR = 1e-10  # log(0) would make every uncovered source word -inf


def length_penalty_factor(length: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT lp(len) = ((5 + len) / 6) ** alpha; scores are divided by it."""
    return ((5 + length) / 6) ** alpha if alpha else 1.0


def repeated_ngram_mask(history: Tensor, n: int, vocab: int) -> Tensor | None:
    """[rows, vocab] True where the token would complete an n-gram the row already holds."""
    steps = history.size(1)
    if n <= 0 or steps == 0:
        return None
    if n == 1:
        seen = torch.zeros(history.size(0), vocab, device=history.device)
        return seen.scatter_(1, history, 1.0) > 0
    if steps < n:
        return None
    windows = history.unfold(1, n, 1)  # [rows, steps - n + 1, n]
    prefix = history[:, steps - n + 1 :].unsqueeze(1)  # the last n - 1 tokens
    match = (windows[:, :, : n - 1] == prefix).all(-1).float()
    banned = torch.zeros(history.size(0), vocab, device=history.device)
    return banned.scatter_add_(1, windows[:, :, n - 1], match) > 0


def coverage_score(coverage: Tensor, mask: Tensor, beta: float) -> Tensor:
    """GNMT cp = beta * Σ over real source tokens of log(min(coverage, 1))."""
    logs = coverage.clamp(min=COVERAGE_FLOOR, max=1.0).log()
    return beta * logs.masked_fill(~mask, 0.0).sum(-1)


@dataclass
class _Finished:
    """Finished hypotheses, gathered as tensors step by step (one entry per step)."""

    sentence: list[Tensor] = field(default_factory=list)
    score: list[Tensor] = field(default_factory=list)
    tokens: list[Tensor] = field(default_factory=list)

    def add(self, sentence: Tensor, score: Tensor, tokens: Tensor) -> None:
        self.sentence.append(sentence)
        self.score.append(score)
        self.tokens.append(tokens)

    def best(self, batch: int, nbest: int) -> list[list[Hypothesis]]:
        """Each sentence's nbest hypotheses, best first (ties keep the earlier finisher)."""
        results: list[list[Hypothesis]] = [[] for _ in range(batch)]
        if not self.sentence:
            return results
        width = max(t.size(1) for t in self.tokens)
        tokens = torch.cat(
            [torch.nn.functional.pad(t, (0, width - t.size(1)), value=PAD_ID) for t in self.tokens]
        )
        sentence, score = torch.cat(self.sentence), torch.cat(self.score)
        order = score.argsort(descending=True, stable=True)
        order = order[sentence[order].argsort(stable=True)]
        for sid, value, row in zip(
            sentence[order].tolist(), score[order].tolist(), tokens[order].tolist(), strict=True
        ):
            if len(results[sid]) < nbest:
                results[sid].append(Hypothesis([tok for tok in row if tok != PAD_ID], value))
        return results


def _attention(model, state) -> Tensor:
    weights = model.attention(state)
    if weights is None:
        raise ValueError(
            "beam: coverage_penalty needs attention weights, but this model's decoder has none "
            "(the fixed-vector decoder). Use an attention decoder (model.decoder=bahdanau or "
            "luong) or set coverage_penalty=0."
        )
    return weights.float()


def beam_search(
    model,
    src: Tensor,
    src_lengths: Tensor,
    *,
    beam_size: int = 5,
    nbest: int = 1,
    length_penalty: float = 1.0,
    min_length: int = 0,
    max_length: int = 200,
    max_length_ratio: float = 2.0,
    no_repeat_ngram_size: int = 0,
    coverage_penalty: float = 0.0,
) -> list[list[Hypothesis]]:
    """The `nbest` best of `beam_size` beams per sentence, best first.

    A sentence is done when `beam_size` hypotheses have ended (EOS, or its length
    limit) among the top `beam_size` candidates of a step; EOS is forbidden before
    `min_length` tokens.

    Args:
        beam_size: hypotheses kept per sentence at every step.
        nbest: hypotheses returned per sentence (on the command line: tab-separated on
            the input's line).
        length_penalty: GNMT length penalty alpha (0 = off).
        min_length: no EOS before this many tokens.
        no_repeat_ngram_size: never repeat an n-gram of this size within a hypothesis
            (0 = off).
        coverage_penalty: GNMT coverage penalty beta (0 = off; needs an attention decoder).
    """
    check_beam_options(
        beam_size=beam_size,
        nbest=nbest,
        min_length=min_length,
        no_repeat_ngram_size=no_repeat_ngram_size,
        coverage_penalty=coverage_penalty,
    )
    batch, k, device = src.size(0), beam_size, src.device
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    repeat = torch.arange(batch, device=device).repeat_interleave(k)
    enc = enc.index_select(repeat)
    state = map_state(lambda s: s.index_select(0, repeat), state)
    limits = length_limits(src_lengths, max_length, max_length_ratio).to(device)
    src_mask = torch.arange(src.size(1), device=device) < src_lengths.to(device).unsqueeze(1)

    alive = torch.arange(batch, device=device)  # original index of each live sentence
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0  # one start hypothesis per sentence, not k copies
    history = torch.empty((batch * k, 0), dtype=torch.long, device=device)
    last = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    coverage = None
    count = torch.zeros(batch, dtype=torch.long, device=device)  # finished per live sentence
    finished = _Finished()
    ranks = torch.arange(2 * k, device=device).unsqueeze(0)

    for t in range(int(limits.max())):
        live = alive.size(0)
        base = (torch.arange(live, device=device) * k).unsqueeze(1)
        logp, state = model.decode_step(last, enc, state)
        vocab = logp.size(-1)
        logp[:, PAD_ID] = NEG_INF
        logp[:, BOS_ID] = NEG_INF  # never an output: BOS only starts the decoder
        if t < min_length:
            logp[:, EOS_ID] = NEG_INF
        banned = repeated_ngram_mask(history, no_repeat_ngram_size, vocab)
        if banned is not None:
            logp.masked_fill_(banned, NEG_INF)
        if coverage_penalty:
            weights = _attention(model, state)
            coverage = weights if coverage is None else coverage + weights

        candidates = (scores.view(-1, 1) + logp).view(live, k * vocab)
        top_scores, top_index = candidates.topk(2 * k, dim=-1)
        top_beam, top_token = top_index // vocab, top_index % vocab
        top_row = base + top_beam  # the row each candidate extends
        at_limit = (t + 1 >= limits.index_select(0, alive)).unsqueeze(1)
        ends = (top_token == EOS_ID) | at_limit
        ending = ends & (ranks < k) & (top_scores > NEG_INF)

        # Finish the ending hypotheses among the k best candidates (vectorised).
        where = ending.nonzero()
        if where.numel():
            b, j = where.unbind(1)
            rows, token = top_row[b, j], top_token[b, j]
            value = top_scores[b, j] / length_penalty_factor(t + 1, length_penalty)
            if coverage is not None:
                value = value + coverage_score(coverage[rows], src_mask[alive[b]], coverage_penalty)
            tokens = torch.cat(
                [history[rows], token.masked_fill(token == EOS_ID, PAD_ID).unsqueeze(1)], dim=1
            )
            finished.add(alive[b], value, tokens)
        count = count + ending.sum(1)

        # Continue with the k best candidates that did not end.
        order = (ranks + ends.long() * 2 * k).argsort(dim=-1)[:, :k]
        scores = top_scores.gather(1, order).masked_fill(ends.gather(1, order), NEG_INF)
        source = top_row.gather(1, order)
        last = top_token.gather(1, order)

        done = (count >= k) | at_limit.squeeze(1) | (scores == NEG_INF).all(1)
        keep = (~done).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        if keep.numel() < live:  # drop finished sentences from every per-row tensor
            alive, count, scores = alive[keep], count[keep], scores[keep]
            source, last = source[keep], last[keep]
            enc = enc.index_select(
                (keep.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            )
        source, last = source.view(-1), last.view(-1)
        history = torch.cat([history.index_select(0, source), last.unsqueeze(1)], dim=1)
        state = map_state(lambda s, source=source: s.index_select(0, source), state)
        if coverage is not None:
            coverage = coverage.index_select(0, source)

    return finished.best(batch, nbest)


beam_search.check_options = check_beam_options
