"""Token-count batches from length buckets, and padding into tensors."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    src: Tensor  # [B, S] source ids + EOS, padded
    src_lengths: Tensor  # [B]
    tgt_in: Tensor  # [B, T] BOS + target ids
    tgt_out: Tensor  # [B, T] target ids + EOS
    num_tokens: int  # target tokens (incl. EOS) that the loss counts

    @property
    def size(self) -> int:
        return self.src.size(0)


def pad(rows: list[list[int]]) -> Tensor:
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), max(width, 1)), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def source_tensor(rows: list[list[int]]) -> tuple[Tensor, Tensor]:
    rows = [r + [EOS_ID] for r in rows]
    return pad(rows), torch.tensor([len(r) for r in rows], dtype=torch.long)


def make_batch(src: list[list[int]], tgt: list[list[int]]) -> Batch:
    src_tensor, src_lengths = source_tensor(src)
    return Batch(
        src=src_tensor,
        src_lengths=src_lengths,
        tgt_in=pad([[BOS_ID] + t for t in tgt]),
        tgt_out=pad([t + [EOS_ID] for t in tgt]),
        num_tokens=sum(len(t) + 1 for t in tgt),
    )


def token_batches(
    src_lengths: list[int],
    tgt_lengths: list[int],
    batch_tokens: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    batch_sentences: int | None = None,
    by_length: bool = True,
) -> list[list[int]]:
    """Group examples of similar length so that each batch holds about `batch_tokens`
    padded tokens (the longer side counts), or exactly `batch_sentences` sentences
    when that is given (the last batch may be smaller). The order depends only on
    (seed, epoch), which is what makes resuming in the middle of an epoch exact.
    by_length=False skips the length buckets (random batches: the plain path)."""
    rng = random.Random(seed * 100_003 + epoch)
    keys = [
        (t, s, rng.random() if shuffle else i) if by_length else (rng.random(),)
        for i, (s, t) in enumerate(zip(src_lengths, tgt_lengths, strict=True))
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0
    for index in order:
        width = max(src_lengths[index], tgt_lengths[index]) + 1
        full = (
            len(current) >= batch_sentences
            if batch_sentences
            else max(widest, width) * (len(current) + 1) > batch_tokens
        )
        if current and full:
            batches.append(current)
            current, widest = [], 0
        current.append(index)
        widest = max(widest, width)
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def padding_fraction(
    batches: list[list[int]], src_lengths: list[int], tgt_lengths: list[int]
) -> float:
    real = padded = 0
    for batch in batches:
        for lengths in (src_lengths, tgt_lengths):
            sizes = [lengths[i] + 1 for i in batch]
            real += sum(sizes)
            padded += max(sizes) * len(sizes)
    return 1.0 - real / padded if padded else 0.0
