"""From a data config to tokenized training examples: load, clean, tokenize once, filter.

The training pairs go through the filters of seq2seq.data.cleaning (data.filters, then
data.max_length on the tokens); dev and test are never filtered, as they are scored
against their references.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from omegaconf import DictConfig, OmegaConf

from seq2seq.data.cache import DataCache, resolve_cache_dir, text_key
from seq2seq.data.cleaning import CleanReport, Filters, clean_pairs, token_drop
from seq2seq.data.corpora import ParallelSplit, load_corpus, load_files
from seq2seq.data.streaming import read_pairs, resolve_shards
from seq2seq.tokenizers import Tokenizer, tokenizer_from_state, tokenizer_to_state, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class TokenizedCorpus:
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.src_ids)


@dataclass
class PreparedData:
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    train: TokenizedCorpus
    dev: ParallelSplit
    test: ParallelSplit | None
    report: CleanReport
    shards: list[str] | None = None  # streamed training data (then `train` is empty)


def load_splits(data_cfg: Any, with_train: bool = True) -> dict[str, ParallelSplit]:
    if data_cfg.corpus == "files":
        files = data_cfg.files
        keys = [
            k
            for k in files
            if (with_train or not k.startswith("train"))
            and not (isinstance(files, DictConfig) and OmegaConf.is_missing(files, k))
        ]
        splits = load_files({k: files[k] for k in keys}, require_train=with_train)
    else:
        splits = load_corpus(
            data_cfg.corpus, Path(data_cfg.root), data_cfg.src_lang, data_cfg.tgt_lang
        )
    for name, limit in (
        ("train", data_cfg.train_subset),
        ("dev", data_cfg.dev_subset),
    ):
        if limit and name in splits:
            split = splits[name]
            splits[name] = ParallelSplit(split.src[:limit], split.tgt[:limit])
    return splits


def build_tokenizers(
    tok_cfg: Any, train: ParallelSplit, cache: DataCache | None = None
) -> tuple[Tokenizer, Tokenizer]:
    """Train the tokenizer(s) on the training text, or take them from the cache."""
    options = dict(tok_cfg.options)
    settings = (tok_cfg.type, tok_cfg.vocab_size, bool(tok_cfg.joint), options)
    key = text_key("tokenizers", *settings, train.src, train.tgt) if cache else None
    saved = cache.load_json("tokenizers", key) if cache else None
    if saved is not None:
        log.info("tokenizers: from the cache (%s)", cache.root)
        src = tokenizer_from_state(saved["src"])
        return (src, src) if tok_cfg.joint else (src, tokenizer_from_state(saved["tgt"]))
    tokenizers = _train_tokenizers(tok_cfg, train, options)
    if cache:
        cache.save_json(
            "tokenizers",
            key,
            {
                side: tokenizer_to_state(tok_cfg.type, tok)
                for side, tok in zip(("src", "tgt"), tokenizers, strict=True)
            },
        )
    return tokenizers


def _train_tokenizers(
    tok_cfg: Any, train: ParallelSplit, options: dict[str, Any]
) -> tuple[Tokenizer, Tokenizer]:
    if tok_cfg.joint:
        shared = train_tokenizer(tok_cfg.type, train.src + train.tgt, tok_cfg.vocab_size, **options)
        return shared, shared
    return (
        train_tokenizer(tok_cfg.type, train.src, tok_cfg.vocab_size, **options),
        train_tokenizer(tok_cfg.type, train.tgt, tok_cfg.vocab_size, **options),
    )


def _encode_column(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    batch = getattr(tokenizer, "encode_batch", None)
    return batch(texts) if batch else [tokenizer.encode(t) for t in texts]


def _tokenizer_digest(tokenizer: Tokenizer) -> str:
    return text_key(type(tokenizer).__qualname__, [repr(tokenizer.state_dict())])


def tokenize(
    split: ParallelSplit,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    max_length: int,
    cache: DataCache | None = None,
    max_length_ratio: float | None = None,
) -> tuple[TokenizedCorpus, dict[str, list[int]]]:
    """Tokenize once through `datasets.map` (Arrow; cached on disk when `cache` is given),
    then drop pairs longer than max_length tokens on a side or, with max_length_ratio, whose
    longer side has more than that many times the tokens of the shorter.

    Returns the kept pairs and, per reason (too_long, length_ratio), the 0-based indexes
    in `split` of the pairs dropped for it."""
    key = None
    if cache:
        digests = (_tokenizer_digest(src_tok), _tokenizer_digest(tgt_tok))
        key = text_key("tokenized", *digests, split.src, split.tgt)
    table = cache.load_table(key) if cache else None
    if table is None:
        table = _tokenize_table(split, src_tok, tgt_tok)
        if cache:
            cache.save_table(key, table)
    else:
        log.info("tokenized training data: from the cache (%s)", cache.root)
    columns = table.to_dict()  # one conversion: a datasets Column decodes per item (slow)
    src_ids, tgt_ids = columns["src_ids"], columns["tgt_ids"]
    keep: list[int] = []
    dropped: dict[str, list[int]] = {"too_long": []}
    for i in range(len(src_ids)):
        reason = token_drop(len(src_ids[i]), len(tgt_ids[i]), max_length, max_length_ratio)
        if reason is None:
            keep.append(i)
        else:
            dropped.setdefault(reason, []).append(i)
    return TokenizedCorpus([src_ids[i] for i in keep], [tgt_ids[i] for i in keep]), dropped


def _tokenize_table(split: ParallelSplit, src_tok: Tokenizer, tgt_tok: Tokenizer):
    table = datasets.Dataset.from_dict({"src": split.src, "tgt": split.tgt})
    return table.map(
        lambda rows: {
            "src_ids": _encode_column(src_tok, rows["src"]),
            "tgt_ids": _encode_column(tgt_tok, rows["tgt"]),
        },
        batched=True,
        batch_size=10_000,
        remove_columns=["src", "tgt"],
        keep_in_memory=True,
        desc="tokenizing",
    )


def prepare_streaming_data(
    data_cfg: Any, tok_cfg: Any, tokenizers: tuple[Tokenizer, Tokenizer] | None = None
) -> PreparedData:
    """Training pairs stay in their shards (read while training, seq2seq.data.streaming);
    the tokenizers learn from the first data.tokenizer_sample pairs; dev/test are loaded."""
    if not data_cfg.train_shards:
        raise ValueError(
            "data.streaming=true needs data.train_shards: a glob of JSON-lines shards, "
            "e.g. data.train_shards='shards/train-*.jsonl.gz' "
            "(build them with data_scripts/make_shards.py)"
        )
    patterns = data_cfg.train_shards
    shards = resolve_shards(patterns if isinstance(patterns, str) else list(patterns))
    splits = load_splits(data_cfg, with_train=False)
    if "dev" not in splits:
        raise ValueError("data.streaming=true still needs a dev set (data.files.dev_src/dev_tgt)")
    filters = Filters.from_config(data_cfg)
    if filters.dedupe:
        raise ValueError(
            "data.filters.dedupe=true is not available with data.streaming=true (it would "
            "keep every pair seen in memory): remove the duplicates when building the shards, "
            "or set data.filters.dedupe=false"
        )
    sample = read_pairs(shards, data_cfg.tokenizer_sample)
    src, tgt, _, report = clean_pairs(*sample, filters, name="tokenizer sample")
    if tokenizers is None:
        root = resolve_cache_dir(data_cfg.cache_dir)
        tokenizers = build_tokenizers(
            tok_cfg, ParallelSplit(src, tgt), DataCache(root) if root else None
        )
    log.info(
        "streaming training data from %d shard(s): %s … %s", len(shards), shards[0], shards[-1]
    )
    return PreparedData(
        tokenizers[0],
        tokenizers[1],
        TokenizedCorpus([], []),
        splits["dev"],
        splits.get("test"),
        report,
        shards=shards,
    )


def _check_left(report: CleanReport) -> None:
    if not report.kept:
        raise ValueError(
            f"no training pair is left ({report}): raise data.max_length (tokens per side) "
            "or relax data.filters"
        )


def prepare_data(
    data_cfg: Any, tok_cfg: Any, tokenizers: tuple[Tokenizer, Tokenizer] | None = None
) -> PreparedData:
    """Load and clean the corpus; train the tokenizer(s) unless given (resume); tokenize."""
    if data_cfg.streaming:
        return prepare_streaming_data(data_cfg, tok_cfg, tokenizers)
    splits = load_splits(data_cfg)
    filters = Filters.from_config(data_cfg)
    src, tgt, numbers, report = clean_pairs(splits["train"].src, splits["train"].tgt, filters)
    _check_left(report)
    train = ParallelSplit(src, tgt)
    root = resolve_cache_dir(data_cfg.cache_dir)
    cache = DataCache(root) if root else None
    if tokenizers is None:
        tokenizers = build_tokenizers(tok_cfg, train, cache)
    tokenized, dropped = tokenize(
        train, *tokenizers, data_cfg.max_length, cache, filters.max_length_ratio
    )
    for reason, indexes in dropped.items():
        report.add(reason, len(indexes), [numbers[i] for i in indexes[:5]])
    _check_left(report)
    log.info("training data: %s", report)
    return PreparedData(
        tokenizers[0], tokenizers[1], tokenized, splits["dev"], splits.get("test"), report
    )
