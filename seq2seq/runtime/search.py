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


GROUP = 16  # columns of the best beam one bound sample stands for (see _top)


def _top(
    logits: np.ndarray, lse: np.ndarray, scores: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's n best candidates, largest first, ties lower column first: their
    columns in its k·V candidates score + (logit − lse) [live, n], and their values.

    logits [live·k, V] (−inf where masked), lse [live·k], scores [live, k] (beam 0 the
    best). Adding the log-softmax and the scores over the whole [live·k, V] would cost
    two passes a step, so only the few candidates that can win are ever computed, each
    as that float32 sum is. The bound: the best beam's columns fall into V / GROUP
    interleaved groups, and the n-th largest group maximum is reached by at least n of
    its candidates; a row's logits need only pass the threshold it implies.
    """
    live, k = scores.shape
    vocab = logits.shape[1]
    if vocab < n:
        return _top_of_all(logits, lse, scores, n)
    groups = vocab // GROUP
    if groups >= n:
        best = logits[::k, : groups * GROUP].reshape(live, GROUP, groups).max(axis=1)
    else:
        best = logits[::k]
    nth = np.partition(best, best.shape[1] - n, axis=1)[:, best.shape[1] - n]
    bound = (nth - lse[::k]) + scores[:, 0]  # [live], as the candidates' own sums
    if not np.isfinite(bound).all():  # fewer than n finite candidates in the best beam
        return _top_of_all(logits, lse, scores, n)
    flat_scores = scores.reshape(-1)
    ok = np.isfinite(flat_scores)
    finite = np.where(ok, flat_scores, 0)
    shift = np.repeat(bound.astype(np.float64), k) - finite
    threshold = shift + lse  # less a margin for the float32 rounding of the sums
    threshold -= 1e-5 * (1 + np.abs(shift) + np.abs(lse) + np.abs(finite))
    threshold = np.where(ok, threshold, np.inf).astype(np.float32)
    flat = np.flatnonzero(logits >= threshold[:, None])
    row, column = np.divmod(flat, vocab)
    values = (logits.reshape(-1)[flat] - lse[row]) + flat_scores[row]
    sentence = row // k
    kept = values >= bound[sentence]
    sentence, values = sentence[kept], values[kept]
    column = (row[kept] % k) * vocab + column[kept]
    order = np.lexsort((column, -values, sentence))
    starts = np.concatenate([[0], np.cumsum(np.bincount(sentence, minlength=live))[:-1]])
    pick = order[starts[:, None] + np.arange(n)]
    return column[pick], values[pick]


def _top_of_all(logits, lse, scores, n: int) -> tuple[np.ndarray, np.ndarray]:
    """_top by sorting every candidate: the plain path, for the rare step its bound
    cannot serve."""
    live, k = scores.shape
    candidates = (logits - lse[:, None]) + scores.reshape(-1, 1)
    candidates = candidates.reshape(live, -1)
    index = np.argsort(-candidates, axis=1, kind="stable")[:, :n]
    return index, np.take_along_axis(candidates, index, axis=1)


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
    # One start hypothesis per sentence: the first step scores one row each, not k (the
    # other k − 1 would be −∞ copies), unless one row's tokens are fewer than 2k.
    width = 1 if model.vocab_size >= 2 * k else k
    if width > 1:
        repeat = np.repeat(np.arange(batch), k)
        enc, state = enc.index(repeat), select_state(state, repeat)
    limits = length_limits(src_lengths, max_length, max_length_ratio)

    alive = np.arange(batch)  # original index of each live sentence
    scores = np.full((batch, width), NEG_INF, np.float32)
    scores[:, 0] = 0.0
    history = np.zeros((batch * width, 0), np.int64)
    last = np.full(batch * width, BOS_ID, np.int64)
    count = np.zeros(batch, np.int64)  # finished per live sentence
    finished: list[tuple[np.ndarray, np.ndarray, list[list[int]]]] = []
    ranks = np.arange(2 * k)[None, :]

    for t in range(int(limits.max())):
        live, width = scores.shape
        base = (np.arange(live) * width)[:, None]
        logits, state = model.step_logits(last, enc, state)
        vocab = logits.shape[1]
        lse = log_sum_exp(logits)[:, 0]  # as torch's log_softmax: before the masks
        _never(logits)
        if t < min_length:
            logits[:, EOS_ID] = NEG_INF
        top_index, top_scores = _top(logits, lse, scores, 2 * k)
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
        if keep.size < live or width < k:  # drop finished sentences; k beams from now on
            alive, count, scores = alive[keep], count[keep], scores[keep]
            source, last = source[keep], last[keep]
            rows = (keep[:, None] * width + np.arange(width)).reshape(-1)
            enc = enc.index(rows if width == k else np.repeat(rows, k))
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
