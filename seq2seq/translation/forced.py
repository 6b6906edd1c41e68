"""Forced decoding: replay given target tokens through the decoder, one step at a time.

Both attention matrices (what the decoder looked at for each token it produced) and
reference scores (how likely the model finds a given translation) come from the same
replay: the source is encoded exactly as for translation (ids + EOS), the decoder is
fed BOS and then the target tokens, and each step's log-probabilities and attention
are kept. Any model with the search-facing API works (`Seq2Seq`, `Ensemble`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from seq2seq.data.batching import pad, source_tensor
from seq2seq.tokenizers import BOS_ID, EOS_ID


@dataclass
class Replay:
    """One (source, target) pair replayed. T target tokens, S source tokens:

    `token_logprobs` [T + 1]: log-probability of each target token, then of EOS;
    `attention` [T + 1, S + 1] (or None without attention): each row a distribution
    over the source tokens and the source EOS.
    """

    token_logprobs: Tensor
    attention: Tensor | None


def forced_decode(
    model,
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
) -> list[Replay]:
    """Replay each target (ids without BOS/EOS) given its source (ids without EOS).

    Pairs are decoded in batches of similar length; results keep the input order.
    """
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    device = next(model.parameters()).device
    results: list[Replay | None] = [None] * len(sources)
    order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), len(targets[i])))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                src, lengths = source_tensor([list(sources[i]) for i in chunk])
                inputs = pad([[BOS_ID, *targets[i]] for i in chunk]).to(device)
                outputs = pad([[*targets[i], EOS_ID] for i in chunk]).to(device)
                enc = model.encode(src.to(device), lengths.to(device))
                state = model.init_state(enc)
                logprobs, attention = [], []
                for t in range(inputs.size(1)):
                    logp, state = model.decode_step(inputs[:, t], enc, state)
                    logprobs.append(logp.float().gather(1, outputs[:, t : t + 1]).squeeze(1))
                    weights = model.attention(state)
                    attention.append(None if weights is None else weights.float())
                token_logprobs = torch.stack(logprobs, dim=1).cpu()  # [B, T_max + 1]
                matrices = None
                if attention[0] is not None:
                    matrices = torch.stack(attention, dim=1).cpu()  # [B, T_max + 1, S_max + 1]
                for row, index in enumerate(chunk):
                    tgt_len, src_len = len(targets[index]) + 1, int(lengths[row])
                    results[index] = Replay(
                        token_logprobs[row, :tgt_len].clone(),
                        None if matrices is None else matrices[row, :tgt_len, :src_len].clone(),
                    )
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]
