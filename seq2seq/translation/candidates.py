"""A batch's candidate target tokens under a vocabulary shortlist, in numpy: the torch
translator and the torch-free runtime decode over the very same set."""

from __future__ import annotations

import numpy as np

from seq2seq.contracts import SPECIALS


def candidate_set(
    table: np.ndarray, frequent: np.ndarray, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted target ids [C] a batch of sources [B, S] decodes over (the special
    tokens first, so their ids are also their positions), and which of them each
    sentence may produce [B, C]: its own candidates, so that its translation does not
    depend on the sentences batched with it. `table` [source vocabulary, top_k] holds
    each source token's likeliest target tokens, `frequent` the most frequent ones."""
    own = table[src].reshape(src.shape[0], -1)  # [B, S * top_k]
    always = np.concatenate([np.arange(len(SPECIALS)), frequent]).astype(np.int64)
    ids = np.unique(np.concatenate([always, own.reshape(-1)]))
    allowed = np.zeros((src.shape[0], ids.size), dtype=bool)
    np.put_along_axis(allowed, np.searchsorted(ids, own), True, axis=1)
    allowed[:, np.searchsorted(ids, always)] = True
    return ids, allowed
