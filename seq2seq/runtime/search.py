"""Greedy and beam search in numpy, step for step the torch strategies of `seq2seq.search`
(same limits, same masking, same scores and tie-breaking; the tests hold them equal).

Their signatures are the torch strategies' minus what the runtime does not do (beam's
n-gram blocking and coverage penalty), so the command line builds the same flags
from them. `model` is a `NumpyModel` or its `Shortlisted` view.
"""

from __future__ import annotations

import numpy as np

from seq2seq.contracts import BOS_ID, EOS_ID, PAD_ID
from seq2seq.runtime.network import log_sum_exp, select_state
from seq2seq.search import Hypothesis
from seq2seq.search.options import check_beam_options

NEG_INF = np.float32(-np.inf)


def length_limits(lengths: np.ndarray, max_length: int, max_length_ratio: float) -> np.ndarray:
    """As `seq2seq.search.length_limits`: ratio × source length + 10, at most max_length
    (in float32, as torch computes it, so the cut falls on the same token)."""
    limit = (lengths.astype(np.float32) * np.float32(max_length_ratio)).astype(np.int64) + 10
    return np.clip(limit, 1, max_length)


def _never(scores: np.ndarray) -> np.ndarray:
    """PAD and BOS are never an output (BOS only starts the decoder); as in torch, they are
    masked after the softmax, so their probability still counts in its normaliser."""
    scores[:, PAD_ID] = NEG_INF
    scores[:, BOS_ID] = NEG_INF
    return scores


def greedy(
    model,
    src: np.ndarray,
    src_lengths: np.ndarray,
    *,
    max_length: int = 200,
    max_length_ratio: float = 2.0,
) -> list[list[Hypothesis]]:
    """The most probable token at every step; a row leaves the batch when it ends."""
    enc, state = model.encode(src, src_lengths)
    limits = length_limits(src_lengths, max_length, max_length_ratio)
    rows = src.shape[0]
    alive = np.arange(rows)
    tokens = np.full(rows, BOS_ID, np.int64)
    scores = np.zeros(rows, np.float32)
    outputs = np.full((rows, int(limits.max())), PAD_ID, np.int64)
    for t in range(outputs.shape[1]):
        logits, state = model.step_logits(tokens, enc, state)
        normaliser = log_sum_exp(logits)[:, 0]
        tokens = _never(logits).argmax(axis=1)
        scores[alive] += logits[np.arange(tokens.size), tokens] - normaliser
        outputs[alive, t] = tokens
        ended = (tokens == EOS_ID) | (t + 1 >= limits[alive])
        if ended.any():
            keep = np.flatnonzero(~ended)
            if keep.size == 0:
                break
            alive, tokens = alive[keep], tokens[keep]
            enc, state = enc.index(keep), select_state(state, keep)
    hyps = []
    for row, score in zip(outputs.tolist(), scores.tolist(), strict=True):
        row = [tok for tok in row if tok != PAD_ID]
        if row and row[-1] == EOS_ID:
            row = row[:-1]
        hyps.append([Hypothesis(row, float(score))])
    return hyps


def _top(candidates: np.ndarray, n: int, block: int) -> np.ndarray:
    """Column indices of each row's n largest values, largest first, ties lower column first.

    A selection over the whole row (k·V values) is the costliest pass of a beam step, so
    the n-th largest of the row's first `block` columns (the best beam's tokens) bounds
    the answer from below: at least n values reach it, and only those few are sorted.
    """
    rows, width = candidates.shape
    block = min(max(block, n), width)
    bound = np.partition(candidates[:, :block], block - n, axis=1)[:, block - n]
    flat = np.flatnonzero(candidates >= bound[:, None])
    row, column = np.divmod(flat, width)
    order = np.lexsort((column, -candidates.reshape(-1)[flat], row))  # row, value, column
    starts = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=rows))[:-1]])
    return column[order[starts[:, None] + np.arange(n)]]


def beam(
    model,
    src: np.ndarray,
    src_lengths: np.ndarray,
    *,
    beam_size: int = 5,
    nbest: int = 1,
    length_penalty: float = 1.0,
    min_length: int = 0,
    max_length: int = 200,
    max_length_ratio: float = 2.0,
) -> list[list[Hypothesis]]:
    """The `nbest` best of `beam_size` beams per sentence, best first; see
    `seq2seq.search.beam.beam_search` for the rules, which this follows exactly."""
    _check_beam(beam_size=beam_size, nbest=nbest, min_length=min_length)
    batch, k = src.shape[0], beam_size
    enc, state = model.encode(src, src_lengths)
    repeat = np.repeat(np.arange(batch), k)
    enc, state = enc.index(repeat), select_state(state, repeat)
    limits = length_limits(src_lengths, max_length, max_length_ratio)

    alive = np.arange(batch)  # original index of each live sentence
    scores = np.full((batch, k), NEG_INF, np.float32)
    scores[:, 0] = 0.0  # one start hypothesis per sentence, not k copies
    history = np.zeros((batch * k, 0), np.int64)
    last = np.full(batch * k, BOS_ID, np.int64)
    count = np.zeros(batch, np.int64)  # finished per live sentence
    finished: list[tuple[np.ndarray, np.ndarray, list[list[int]]]] = []
    ranks = np.arange(2 * k)[None, :]

    for t in range(int(limits.max())):
        live = alive.size
        base = (np.arange(live) * k)[:, None]
        logits, state = model.step_logits(last, enc, state)
        # in place, as torch's scores + log_softmax(logits): the [rows, V] arrays dominate
        logp = _never(np.subtract(logits, log_sum_exp(logits), out=logits))
        vocab = logp.shape[1]
        if t < min_length:
            logp[:, EOS_ID] = NEG_INF
        candidates = np.add(logp, scores.reshape(-1, 1), out=logp).reshape(live, k * vocab)
        top_index = _top(candidates, 2 * k, vocab)
        top_scores = np.take_along_axis(candidates, top_index, axis=1)
        top_beam, top_token = top_index // vocab, top_index % vocab
        top_row = base + top_beam  # the row each candidate extends
        at_limit = (t + 1 >= limits[alive])[:, None]
        ends = (top_token == EOS_ID) | at_limit
        ending = ends & (ranks < k) & (top_scores > NEG_INF)

        b, j = np.nonzero(ending)
        if b.size:
            rows, token = top_row[b, j], top_token[b, j]
            value = top_scores[b, j] / (
                ((5 + t + 1) / 6) ** length_penalty if length_penalty else 1
            )
            ended = np.concatenate(
                [history[rows], np.where(token == EOS_ID, PAD_ID, token)[:, None]], 1
            )
            finished.append((alive[b], value.astype(np.float32), ended.tolist()))
        count = count + ending.sum(axis=1)

        order = np.argsort(ranks + ends * (2 * k), axis=1, kind="stable")[:, :k]
        scores = np.where(
            np.take_along_axis(ends, order, 1), NEG_INF, np.take_along_axis(top_scores, order, 1)
        )
        source = np.take_along_axis(top_row, order, 1)
        last = np.take_along_axis(top_token, order, 1)

        done = (count >= k) | at_limit[:, 0] | (scores == NEG_INF).all(axis=1)
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            break
        if keep.size < live:  # drop finished sentences from every per-row array
            alive, count, scores = alive[keep], count[keep], scores[keep]
            source, last = source[keep], last[keep]
            enc = enc.index((keep[:, None] * k + np.arange(k)).reshape(-1))
        source, last = source.reshape(-1), last.reshape(-1)
        history = np.concatenate([history[source], last[:, None]], axis=1)
        state = select_state(state, source)
    return _best(finished, batch, nbest)


def _check_beam(**options) -> None:
    check_beam_options(no_repeat_ngram_size=0, coverage_penalty=0.0, **options)


beam.check_options = _check_beam


def _best(finished, batch: int, nbest: int) -> list[list[Hypothesis]]:
    """Each sentence's nbest hypotheses, best first (ties keep the earlier finisher)."""
    results: list[list[Hypothesis]] = [[] for _ in range(batch)]
    if not finished:
        return results
    sentence = np.concatenate([f[0] for f in finished])
    score = np.concatenate([f[1] for f in finished])
    tokens = [row for f in finished for row in f[2]]
    order = np.argsort(-score, kind="stable")
    order = order[np.argsort(sentence[order], kind="stable")]
    for i in order.tolist():
        sid = int(sentence[i])
        if len(results[sid]) < nbest:
            found = [tok for tok in tokens[i] if tok != PAD_ID]
            results[sid].append(Hypothesis(found, float(score[i])))
    return results


STRATEGIES = {"greedy": greedy, "beam": beam}
