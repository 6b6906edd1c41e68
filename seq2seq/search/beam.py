"""Beam search, batched over sentences × beams, with GNMT length penalty and n-best."""

from __future__ import annotations

import torch
from torch import Tensor

from ..rnn import map_state
from ..tokenizers import BOS_ID, EOS_ID, PAD_ID
from . import Hypothesis, length_limits


def _normalise(score: float, length: int, alpha: float) -> float:
    return score / (((5 + length) / 6) ** alpha) if alpha else score


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
) -> list[list[Hypothesis]]:
    if nbest > beam_size:
        raise ValueError(f"beam: nbest ({nbest}) cannot exceed beam_size ({beam_size})")
    batch, k = src.size(0), beam_size
    device = src.device
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    repeat = torch.arange(batch, device=device).repeat_interleave(k)
    enc = enc.index_select(repeat)
    state = map_state(lambda s: s.index_select(0, repeat), state)
    limits = length_limits(src_lengths, max_length, max_length_ratio).tolist()

    scores = torch.full((batch, k), -float("inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.full((batch * k, 0), BOS_ID, dtype=torch.long, device=device)
    last = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    base = (torch.arange(batch, device=device) * k).unsqueeze(1)

    for t in range(max(limits)):
        logp, state = model.decode_step(last, enc, state)
        vocab = logp.size(-1)
        logp[:, PAD_ID] = -float("inf")
        logp[:, BOS_ID] = -float("inf")  # never an output: BOS only starts the decoder
        if t < min_length:
            logp[:, EOS_ID] = -float("inf")
        candidates = (scores.view(-1, 1) + logp).view(batch, k * vocab)
        top_scores, top_index = candidates.topk(2 * k, dim=-1)
        top_beam, top_token = top_index // vocab, top_index % vocab
        at_limit = torch.tensor([t + 1 >= limit for limit in limits], device=device).unsqueeze(1)
        ranks = torch.arange(2 * k, device=device).unsqueeze(0)
        ends = (top_token == EOS_ID) | at_limit
        # Finish hypotheses that end among the best k candidates of a live sentence.
        for b, j in (ends & (ranks < k)).nonzero().tolist():
            if done[b] or top_scores[b, j] == -float("inf"):
                continue
            tokens = history[base[b, 0] + top_beam[b, j]].tolist()
            if top_token[b, j] != EOS_ID:
                tokens.append(int(top_token[b, j]))
            finished[b].append(
                Hypothesis(
                    tokens,
                    _normalise(float(top_scores[b, j].detach()), len(tokens) + 1, length_penalty),
                )
            )
            if len(finished[b]) >= k:
                done[b] = True
        for b in range(batch):
            if not done[b] and t + 1 >= limits[b]:
                done[b] = True
        if all(done):
            break
        # Continue with the k best candidates that did not end.
        order = (ranks + ends.long() * 2 * k).argsort(dim=-1)[:, :k]
        scores = top_scores.gather(1, order)
        scores = scores.masked_fill(ends.gather(1, order), -float("inf"))
        source = (base + top_beam.gather(1, order)).view(-1)
        last = top_token.gather(1, order).view(-1)
        history = torch.cat([history.index_select(0, source), last.unsqueeze(1)], dim=1)
        state = map_state(lambda s, source=source: s.index_select(0, source), state)

    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]
