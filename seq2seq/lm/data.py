"""Text for the character language model: the character vocabulary, splits and streams.

The training text is one long character stream (lines joined by newlines, so a
model learns where sentences end) cut into `batch_size` parallel streams that
truncated BPTT walks through; the hidden state is carried along each stream.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seq2seq.data.reading import CorpusError, read_lines

log = logging.getLogger(__name__)

UNK = "\ufffd"  # stands for characters outside the vocabulary (never sampled)


class CharVocab:
    """Characters ↔ ids. No padding or sentence markers: "hello" has exactly {h, e, l, o}.

    With `unk=True` the vocabulary ends with U+FFFD, which stands for characters
    unseen in training (or rarer than `min_count`).
    """

    def __init__(self, chars: Iterable[str], unk: bool = False) -> None:
        chars = [c for c in chars if c != UNK]
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("a character vocabulary needs distinct single characters")
        self.chars = chars + ([UNK] if unk else [])
        self.unk_id = len(chars) if unk else None
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @classmethod
    def build(cls, text: str, min_count: int = 1, unk: bool = True) -> CharVocab:
        counts = Counter(text)  # insertion order: first appearance ("hello" → h, e, l, o)
        kept = [c for c, n in counts.items() if n >= min_count]
        return cls(kept, unk=unk)

    def encode(self, text: str) -> list[int]:
        if self.unk_id is None:
            missing = sorted({c for c in text if c not in self.index})
            if missing:
                raise ValueError(
                    f"characters {missing!r} are not in the vocabulary {self.chars!r} "
                    "(it has no unknown symbol)"
                )
            return [self.index[c] for c in text]
        return [self.index.get(c, self.unk_id) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def state_dict(self) -> dict[str, Any]:
        return {"chars": [c for c in self.chars if c != UNK], "unk": self.unk_id is not None}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> CharVocab:
        return cls(list(state["chars"]), unk=bool(state["unk"]))


@dataclass
class LMText:
    train: str
    valid: str
    source: str  # where the text came from, for the log


def _is_heldout(line: str, fraction: float) -> bool:
    """Deterministic split by the line's hash: equal lines always land on the same side."""
    digest = hashlib.md5(line.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def load_text(data_cfg: Any) -> LMText:
    """The training and held-out text that `data.*` names (see conf/data/lm_text.yaml).

    - `data.text`: inline text, used for training and for evaluation (the "hello" example);
    - else `data.path` (plain or .gz, one line per line) with `data.valid_path`, or a
      held-out share `data.valid_fraction` of the lines chosen by a hash of each line
      (so a repeated sentence never sits on both sides).
    """
    text = data_cfg.text
    if text:
        return LMText(train=str(text), valid=str(text), source="data.text")
    path = data_cfg.path
    if not path:
        raise CorpusError("set data.path (a text file, plain or .gz) or data.text for task=lm")
    lines = read_lines(path)
    max_lines = data_cfg.max_lines
    valid_path = data_cfg.valid_path
    if valid_path:
        train_lines, valid_lines = lines, read_lines(valid_path)
    else:
        fraction = data_cfg.valid_fraction
        train_lines = [line for line in lines if not _is_heldout(line, fraction)]
        valid_lines = [line for line in lines if _is_heldout(line, fraction)]
    if max_lines:
        train_lines = train_lines[: int(max_lines)]
        valid_lines = valid_lines[: max(1, int(max_lines) // 10)]
    if not train_lines or not valid_lines:
        raise CorpusError(
            f"{path}: too little text for a training and a held-out part "
            f"({len(train_lines)} and {len(valid_lines)} lines); use a longer file, "
            "data.valid_path, or a larger data.valid_fraction"
        )
    log.info(
        "LM text %s: %d training lines, %d held-out lines%s",
        path,
        len(train_lines),
        len(valid_lines),
        f" (from {valid_path})" if valid_path else "",
    )
    return LMText(
        train="\n".join(train_lines) + "\n",
        valid="\n" + "\n".join(valid_lines) + "\n",
        source=str(path),
    )


def shuffle_lines(ids: Tensor, newline_id: int | None, seed: int) -> Tensor:
    """The same lines (each ending at a newline id) in a seeded random order.

    Used at every epoch of a line-based corpus (Tatoeba is sorted by length); text
    without newlines is returned unchanged.
    """
    if newline_id is None:
        return ids
    ends = (ids == newline_id).nonzero().flatten() + 1
    if ends.numel() < 2:
        return ids
    if int(ends[-1]) != ids.numel():
        ends = torch.cat([ends, torch.tensor([ids.numel()])])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), ends[:-1]])
    order = torch.randperm(ends.numel(), generator=torch.Generator().manual_seed(seed))
    return torch.cat([ids[starts[i] : ends[i]] for i in order.tolist()])


def make_streams(ids: list[int] | Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Cut one id sequence into `batch_size` contiguous streams: inputs and targets [B, n].

    Targets are the inputs shifted by one. The tail that does not fill every stream
    is dropped (training); use `eval_streams` to score every character.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    n = (ids.numel() - 1) // batch_size
    if n < 1:
        raise ValueError(
            f"the text has {ids.numel()} characters, too few for {batch_size} streams; "
            "lower trainer.batch_size or use more text"
        )
    inputs = ids[: n * batch_size].view(batch_size, n)
    targets = ids[1 : n * batch_size + 1].view(batch_size, n)
    return inputs, targets


def eval_streams(ids: list[int] | Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Like `make_streams` but every character after the first is a target exactly once.

    The last stream is padded; padded targets are -100 (ignored by cross-entropy).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    count = ids.numel() - 1
    if count < 1:
        raise ValueError("held-out text needs at least two characters")
    batch_size = max(1, min(batch_size, count))
    n = -(-count // batch_size)
    inputs = torch.zeros(batch_size * n, dtype=torch.long)
    targets = torch.full((batch_size * n,), -100, dtype=torch.long)
    inputs[:count] = ids[:-1]
    targets[:count] = ids[1:]
    return inputs.view(batch_size, n), targets.view(batch_size, n)


def save_vocab(vocab: CharVocab, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "chars.txt", "w", encoding="utf-8") as f:
        f.writelines(repr(c)[1:-1] + "\n" for c in vocab.chars)
