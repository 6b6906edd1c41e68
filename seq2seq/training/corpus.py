"""The translation training data of one process: tokenizers shared by all processes,
the batches of each epoch, and the stream of them a resume can re-enter exactly."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from seq2seq.data.batching import Batch, make_batch, padding_fraction, token_batches
from seq2seq.data.cleaning import CleanReport, Filters
from seq2seq.data.pipeline import PreparedData, prepare_data, tokenize
from seq2seq.data.streaming import StreamStats, check_shards_for_ranks, stream_batches
from seq2seq.tokenizers import tokenizer_from_state, tokenizer_to_state
from seq2seq.training.checkpointing import TrainingError
from seq2seq.training.distributed import DistContext
from seq2seq.translation.shortlist import learn_shortlist

log = logging.getLogger(__name__)


def tokenizer_states(data: PreparedData, kind: str) -> dict[str, Any]:
    return {
        "src": tokenizer_to_state(kind, data.src_tokenizer),
        "tgt": tokenizer_to_state(kind, data.tgt_tokenizer),
    }


DATA_REPORT = "data_report.json"


def write_data_report(run_dir: Path, report: CleanReport) -> None:
    """run_dir/data_report.json: what cleaning dropped from the training data, per filter
    (for a streamed corpus, from the tokenizer sample; the stream's own counts are logged
    at each epoch's end)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.as_dict(), indent=2) + "\n"
    (run_dir / DATA_REPORT).write_text(text, encoding="utf-8")


def load_data(cfg: Any, dist: DistContext, saved: dict[str, Any] | None) -> PreparedData:
    """The prepared corpus, with the tokenizers of a resumed checkpoint (`saved`) if any.
    Under torchrun, rank 0 trains the tokenizers (or takes them from the cache) and
    every other process uses exactly those."""
    if saved is None and dist.enabled:
        data = prepare_data(cfg.data, cfg.tokenizer) if dist.is_main else None
        saved = dist.broadcast(data and tokenizer_states(data, cfg.tokenizer.type))
        if data is not None:
            return data
    tokenizers = None
    if saved is not None:
        src = tokenizer_from_state(saved["src"])
        joint = cfg.tokenizer.joint  # one object, as prepare_data makes it
        tokenizers = (src, src if joint else tokenizer_from_state(saved["tgt"]))
    return prepare_data(cfg.data, cfg.tokenizer, tokenizers)


class TrainingCorpus:
    """Batches of the training data for this process (in memory or streamed)."""

    def __init__(self, data: PreparedData, cfg: Any, dist: DistContext) -> None:
        self.data, self.cfg, self.tcfg, self.dist = data, cfg, cfg.trainer, dist
        self.src_lengths = [len(s) for s in data.train.src_ids]
        self.tgt_lengths = [len(t) for t in data.train.tgt_ids]
        self.dev_tokens, _ = tokenize(data.dev, data.src_tokenizer, data.tgt_tokenizer, 10**9)
        self.stream_stats = StreamStats()
        self._shortlist: dict[str, Any] | None = None

    def length_summary(self) -> dict[str, Any]:
        """{"source_lengths": {"p99", "max"}} in tokens (empty when streamed): a translator
        flags sources longer than what the model learnt from."""
        if not self.src_lengths:
            return {}
        ordered = sorted(self.src_lengths)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return {"source_lengths": {"p99": p99, "max": ordered[-1]}}

    def shortlist_summary(self) -> dict[str, Any]:
        """{"shortlist": {"table", "frequent"}} (empty when streamed): the candidate target
        tokens of each source token, which translation decodes over (learnt once)."""
        if not self.src_lengths:
            return {}
        if self._shortlist is None:
            train, vocab = self.data.train, self.data.src_tokenizer.vocab_size
            self._shortlist = learn_shortlist(train.src_ids, train.tgt_ids, vocab).state()
        return {"shortlist": self._shortlist}

    @property
    def streamed(self) -> bool:
        return self.data.shards is not None

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The training examples of each batch of `epoch`, in order."""
        t = self.tcfg
        batches = token_batches(
            self.src_lengths,
            self.tgt_lengths,
            t.batch_tokens,
            t.seed,
            epoch,
            batch_sentences=t.batch_sentences,
            by_length=t.length_buckets,
        )
        # Under torchrun every process takes a share of each batch; a batch with fewer
        # sentences than processes (at most one per epoch) cannot be shared.
        return [b for b in batches if len(b) >= self.dist.world_size]

    def padding_fraction(self, epoch: int = 0) -> float:
        return padding_fraction(self.epoch_batches(epoch), self.src_lengths, self.tgt_lengths)

    def epoch_source(self, epoch: int, skip: int) -> Iterator[Batch]:
        """This process's batches of `epoch`, from batch `skip` on.

        In memory, every process builds the same global batches and takes its share of
        each, so the global batch does not depend on the number of processes. Streamed,
        each process reads its own shards and makes batches of 1/N of the batch size.
        A resume re-reads the stream and skips the batches already trained on (exact,
        as the stream is a function of the shards, seed, epoch and rank).
        """
        t = self.tcfg
        if not self.streamed:
            train = self.data.train
            for mine in map(self.dist.shard, self.epoch_batches(epoch)[skip:]):
                yield make_batch([train.src_ids[i] for i in mine], [train.tgt_ids[i] for i in mine])
            return
        world, sentences = self.dist.world_size, t.batch_sentences
        self.stream_stats = StreamStats()
        stream = stream_batches(
            self.data.shards,
            self.data.src_tokenizer,
            self.data.tgt_tokenizer,
            rank=self.dist.rank,
            world_size=world,
            epoch=epoch,
            seed=t.seed,
            batch_tokens=max(1, t.batch_tokens // world),
            batch_sentences=max(1, sentences // world) if sentences else None,
            max_length=self.cfg.data.max_length,
            window=self.cfg.data.stream_window,
            stats=self.stream_stats,
            filters=Filters.from_config(self.cfg.data),
        )
        for src, tgt in islice(stream, skip, None):
            yield make_batch(src, tgt)

    def updates(self, source: Iterator[Batch], accumulate: int) -> Iterator[list[Batch]]:
        """The batches of each update, until any process runs out (all end the epoch
        together)."""
        while True:
            batches = list(islice(source, accumulate))
            (epoch_over,) = self.dist.any(not batches)
            if epoch_over:
                return
            yield batches

    def describe(self, epoch: int, accumulate: int) -> int | None:
        """Log the epoch's size; the updates per epoch (None when streaming: unknown)."""
        if self.streamed:
            check_shards_for_ranks(self.data.shards, self.dist.world_size)
            log.info(
                "streaming %d shard(s) over %d process(es)",
                len(self.data.shards),
                self.dist.world_size,
            )
            return None
        epoch_batches = self.epoch_batches(epoch)
        updates = math.ceil(len(epoch_batches) / accumulate)
        log.info(
            "%d batches per epoch (%d updates), padding %.1f%%",
            len(epoch_batches),
            updates,
            100 * padding_fraction(epoch_batches, self.src_lengths, self.tgt_lengths),
        )
        return updates

    def end_epoch(self, epoch: int, empty: bool) -> None:
        """An epoch without a single batch is an error (the data cannot train anything)."""
        if empty:
            raise TrainingError(
                f"epoch {epoch} gave no training batch: every pair was empty or longer "
                f"than data.max_length={self.cfg.data.max_length}"
                + (f" ({self.stream_stats})" if self.streamed else "")
            )
        if self.streamed:
            log.info("epoch %d streamed (this process): %s", epoch, self.stream_stats)
