"""Training corpora larger than RAM: stream JSON-lines shards, tokenize on the fly, batch by
length inside a bounded window.

Shards are files of ``{"src": "...", "tgt": "..."}`` lines (``.jsonl`` or ``.jsonl.gz``),
built by ``data_scripts/make_shards.py``. :func:`stream_batches` reads one rank's whole
shards through HF ``datasets`` streaming; memory holds the shuffle buffer and one window
of tokenized pairs, never the corpus.

Shuffling (datasets 5.2): ``IterableDataset.shuffle(generator=...)`` permutes the shard
list at once and mixes examples in a bounded buffer fed by up to 10 shards at a time. The
generator is seeded with ``(seed, epoch)``, so every rank permutes the shards the same way
(which :func:`datasets.distributed.split_dataset_by_node` needs to hand out disjoint
shards: rank r reads shards r, r + world_size, ... of the permuted list) and every epoch
gets a new shard order and buffer order. ``set_epoch`` is not used: the epoch is already in
the seed. Same (files, rank, world_size, epoch, seed, settings, tokenizers) → same
batches, which is what lets a run resume mid-epoch by skipping batches.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.data.batching import token_batches
from seq2seq.data.cleaning import Filters, has_control_chars, token_drop
from seq2seq.data.reading import CorpusError

__all__ = [
    "CHUNK",
    "SHARD_SUFFIXES",
    "StreamStats",
    "check_shards_for_ranks",
    "read_pairs",
    "resolve_shards",
    "stream_batches",
]

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz")
#: examples per tokenizer call; also bounds how far past the window the reader runs
CHUNK = 1000
_MAKE_SHARDS = "python data_scripts/make_shards.py --corpus NAME --shards K --out DIR"

Batches = Iterator[tuple[list[list[int]], list[list[int]]]]


@dataclass
class StreamStats:
    """What the stream did with the pairs it read (never silent): read = kept + empty +
    too_long + the sum of `filtered`, counted as pairs pass through, so it can be read
    mid-epoch."""

    read: int = 0
    kept: int = 0
    empty: int = 0  # a side is blank (or tokenizes to nothing)
    too_long: int = 0  # a side has more than max_length tokens
    #: pairs dropped by data.filters, per reason (control_chars, too_many_chars, copy,
    #: length_ratio; dedupe cannot stream)
    filtered: dict[str, int] = field(default_factory=dict)


def resolve_shards(patterns: str | list[str]) -> list[str]:
    """Glob patterns (or plain paths) → the sorted shard files (``.jsonl``/``.jsonl.gz``)."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    if not patterns:
        raise CorpusError(f"no shard pattern given; build shards with `{_MAKE_SHARDS}`.")
    found: set[str] = set()
    for pattern in patterns:
        expanded = os.path.expanduser(str(pattern))
        matches = glob.glob(expanded, recursive=True) if glob.has_magic(expanded) else [expanded]
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            hint = " (it is a folder: give a glob such as DIR/*.jsonl.gz)"
            raise CorpusError(
                f"shards: {pattern!r} matches no file"
                + (hint if os.path.isdir(expanded) else "")
                + f". Build shards with `{_MAKE_SHARDS}` and point the pattern at them."
            )
        wrong = [f for f in files if not f.endswith(SHARD_SUFFIXES)]
        if wrong:
            raise CorpusError(
                f"shards: {wrong[0]} (from {pattern!r}) is not a JSON-lines shard; shard files "
                f"end in {' or '.join(SHARD_SUFFIXES)} (as make_shards.py writes them)."
            )
        found.update(os.path.abspath(f) for f in files)
    return sorted(found)


def check_shards_for_ranks(files: list[str], world_size: int) -> None:
    """Every rank must read whole shards, the same number of them."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    count = len(files)
    if count < world_size or count % world_size:
        problem = "fewer shards than" if count < world_size else "a count not divisible by"
        raise ValueError(
            f"{count} shard file(s) for {world_size} ranks ({problem} the ranks): every rank "
            "must read whole shards. Re-shard with `python data_scripts/make_shards.py ... "
            f"--shards K` where K is a multiple of {world_size}."
        )


def read_pairs(files: list[str], limit: int | None = None) -> tuple[list[str], list[str]]:
    """The first `limit` (src, tgt) pairs of the shards in file order, verbatim (e.g. the
    sample a tokenizer is trained on); all of them when limit is None."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    src: list[str] = []
    tgt: list[str] = []
    for path in files:
        if limit is not None and len(src) >= limit:
            break
        for s, t in _iter_file(Path(path)):
            if limit is not None and len(src) >= limit:
                break
            src.append(s)
            tgt.append(t)
    return src, tgt


def _iter_file(path: Path) -> Iterator[tuple[str, str]]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield _parse_line(line, path, number)
    except FileNotFoundError:
        raise CorpusError(f"{path}: shard file not found.") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CorpusError(
            f"{path}: cannot read the shard ({exc}); a .gz name must hold gzip data, the "
            "text must be UTF-8. Rebuild it with make_shards.py."
        ) from exc


def _parse_line(line: str, path: Path, number: int) -> tuple[str, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{number}: not valid JSON ({exc.msg}).") from None
    if not (isinstance(row, dict) and row.keys() == {"src", "tgt"}) or not all(
        isinstance(v, str) for v in row.values()
    ):
        raise CorpusError(
            f'{path}:{number}: expected {{"src": "...", "tgt": "..."}} (two strings, no other '
            f"keys), got {line.strip()[:80]!r}. Rebuild the shard with make_shards.py."
        )
    return row["src"], row["tgt"]


def stream_batches(
    files: list[str],
    src_tok: Any,
    tgt_tok: Any,
    *,
    rank: int,
    world_size: int,
    epoch: int,
    seed: int,
    batch_tokens: int,
    batch_sentences: int | None,
    max_length: int,
    window: int,
    stats: StreamStats | None = None,
    filters: Filters | None = None,
) -> Batches:
    """Yield this rank's batches for one pass (epoch) over its shards: each batch is
    (src_ids_list, tgt_ids_list). Pairs with an empty side or more than `max_length`
    tokens on a side are dropped and counted in `stats`, and so are those `filters`
    (data.filters, without dedupe) rejects. Arguments are checked now; the shards are
    opened on the first ``next()``."""
    if not 0 <= rank < world_size:
        raise ValueError(
            f"rank must be in 0..{world_size - 1} (world_size={world_size}), got {rank}"
        )
    check_shards_for_ranks(files, world_size)
    for name, value in (("window", window), ("max_length", max_length)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if batch_sentences is not None and batch_sentences < 1:
        raise ValueError(f"batch_sentences must be >= 1 or None, got {batch_sentences}")
    if not batch_sentences and batch_tokens < 1:
        raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    stats = stats if stats is not None else StreamStats()
    filters = filters or Filters()
    if filters.dedupe:
        raise ValueError("dedupe cannot stream: remove duplicate pairs when building shards")
    ratio = filters.max_length_ratio
    files = list(files)

    def lazily() -> Batches:  # a generator: nothing is opened before the first next()
        chunk = min(CHUNK, window)
        ds = _rank_dataset(files, rank, world_size, epoch, seed, window)
        ds = ds.map(
            _encode_rows,
            batched=True,
            batch_size=chunk,
            remove_columns=["src", "tgt"],
            fn_kwargs={"src_tok": src_tok, "tgt_tok": tgt_tok, "filters": filters},
        )
        src: list[list[int]] = []
        tgt: list[list[int]] = []
        index = 0
        for rows in _checked(ds.iter(batch_size=chunk), files):
            for s, t, drop in zip(rows["src_ids"], rows["tgt_ids"], rows["drop"], strict=True):
                stats.read += 1
                drop = drop or (s and t and token_drop(len(s), len(t), max_length, ratio))
                if not s or not t:
                    stats.empty += 1
                elif drop == "too_long":
                    stats.too_long += 1
                elif drop:
                    stats.filtered[drop] = stats.filtered.get(drop, 0) + 1
                else:
                    stats.kept += 1
                    src.append(s)
                    tgt.append(t)
                    if len(src) >= window:
                        yield from _window_batches(
                            src, tgt, batch_tokens, batch_sentences, (seed, rank, index), epoch
                        )
                        src, tgt, index = [], [], index + 1
        if src:
            yield from _window_batches(
                src, tgt, batch_tokens, batch_sentences, (seed, rank, index), epoch
            )

    return lazily()


def _rank_dataset(
    files: list[str], rank: int, world_size: int, epoch: int, seed: int, buffer_size: int
):
    """The shuffled stream of this rank's shards (see the module docstring)."""
    import datasets
    import numpy as np
    from datasets.distributed import split_dataset_by_node

    features = datasets.Features({"src": datasets.Value("string"), "tgt": datasets.Value("string")})
    ds = datasets.load_dataset(
        "json", data_files=files, split="train", streaming=True, features=features
    )
    ds = ds.shuffle(generator=np.random.default_rng([seed, epoch]), buffer_size=buffer_size)
    # "shards", not "auto": never fall back silently to reading every shard on every rank
    return split_dataset_by_node(ds, rank=rank, world_size=world_size, strategy="shards")


def _checked(rows: Iterator[dict[str, list]], files: list[str]) -> Iterator[dict[str, list]]:
    """datasets' errors for a malformed shard name neither file nor line: find them."""
    import pyarrow as pa
    from datasets.table import CastError

    try:
        yield from rows
    except (CastError, pa.ArrowException) as exc:
        for path in files:  # only on failure: re-read with the strict line parser
            for _ in _iter_file(Path(path)):
                pass
        raise CorpusError(
            f"shards: cannot read {len(files)} file(s) ({files[0]}, ...): {exc}. Each line "
            'must be {"src": "...", "tgt": "..."}; rebuild them with make_shards.py.'
        ) from exc


def _encode_rows(
    rows: dict[str, list], src_tok: Any, tgt_tok: Any, filters: Filters
) -> dict[str, list]:
    """Token ids of both sides, and the text filter that drops each pair ("" for none)."""
    return {
        "src_ids": _encode(src_tok, rows["src"]),
        "tgt_ids": _encode(tgt_tok, rows["tgt"]),
        "drop": [_text_drop(s, t, filters) for s, t in zip(rows["src"], rows["tgt"], strict=True)],
    }


def _text_drop(src: str | None, tgt: str | None, filters: Filters) -> str:
    """The first text filter (cleaning.FILTERS order, dedupe aside) rejecting a pair, or ""."""
    s, t = src or "", tgt or ""
    if filters.drop_control_chars and (has_control_chars(s) or has_control_chars(t)):
        return "control_chars"
    if filters.max_chars is not None and max(len(s), len(t)) > filters.max_chars:
        return "too_many_chars"
    if filters.drop_copies and s.strip() and s.strip() == t.strip():
        return "copy"
    return ""


def _encode(tokenizer: Any, texts: list[str | None]) -> list[list[int]]:
    """Token ids per text; a blank text (or a missing key) gives [] without a tokenizer call."""
    out: list[list[int]] = [[] for _ in texts]
    real = [i for i, t in enumerate(texts) if t and not t.isspace()]
    batch = getattr(tokenizer, "encode_batch", None)
    chosen = [texts[i] for i in real]
    encoded = batch(chosen) if batch else [tokenizer.encode(t) for t in chosen]
    for i, ids in zip(real, encoded, strict=True):
        out[i] = ids
    return out


def _window_batches(
    src: list[list[int]],
    tgt: list[list[int]],
    batch_tokens: int,
    batch_sentences: int | None,
    key: tuple[int, int, int],
    epoch: int,
) -> Batches:
    """Length-bucketed batches of one window, in an order fixed by (seed, rank, window, epoch)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    groups = token_batches(
        [len(s) for s in src],
        [len(t) for t in tgt],
        batch_tokens,
        int.from_bytes(digest, "big"),
        epoch,
        batch_sentences=batch_sentences,
    )
    for group in groups:
        yield [src[i] for i in group], [tgt[i] for i in group]
