"""Streaming training data (data.streaming=true): shards built by data_scripts/make_shards.py
from the real Multi30k training split, read back through seq2seq.data.streaming.

The word tokenizer is trained on every shard sentence, so ids decode back to the
whitespace-normalised text: the tests compare what the ranks read with what the shards
hold, pair by pair (as multisets: the pool repeats).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from seq2seq.data.corpora import load_corpus
from seq2seq.data.reading import CorpusError
from seq2seq.data.streaming import (
    CHUNK,
    StreamStats,
    check_shards_for_ranks,
    read_pairs,
    resolve_shards,
    stream_batches,
)
from seq2seq.tokenizers import train_tokenizer

SHARDS = 4
PAIRS = 36_000  # more than Multi30k's 29,000 training pairs: the pool repeats


@pytest.fixture(scope="module")
def make_shards(repo_root):
    spec = importlib.util.spec_from_file_location(
        "make_shards", repo_root / "data_scripts" / "make_shards.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(data_root) -> Counter:
    train = load_corpus("multi30k", data_root, "en", "de")["train"]
    return Counter(zip(train.src, train.tgt, strict=True))


@pytest.fixture(scope="module")
def shard_dir(make_shards, data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    argv = ["--corpus", "multi30k:en-de", "--root", str(data_root), "--out", str(out)]
    assert make_shards.main([*argv, "--pairs", str(PAIRS), "--shards", str(SHARDS), "--gzip"]) == 0
    return out


@pytest.fixture(scope="module")
def files(shard_dir) -> list[str]:
    return resolve_shards(str(shard_dir / "train-*.jsonl.gz"))


def shard_pairs(path: str) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [(row["src"], row["tgt"]) for row in map(json.loads, f)]


@pytest.fixture(scope="module")
def tokenizer(files):
    src, tgt = read_pairs(files)
    return train_tokenizer("word", src + tgt, 1_000_000)


def norm(pair: tuple[str, str]) -> tuple[str, str]:
    return " ".join(pair[0].split()), " ".join(pair[1].split())


def collect(files, tokenizer, stats=None, **overrides) -> list[tuple[list, list]]:
    options = dict(
        rank=0,
        world_size=1,
        epoch=0,
        seed=3,
        batch_tokens=2000,
        batch_sentences=None,
        max_length=200,
        window=4000,
    )
    options.update(overrides)
    return list(stream_batches(files, tokenizer, tokenizer, stats=stats, **options))


def decoded(batches, tokenizer) -> Counter:
    return Counter(
        (tokenizer.decode(s), tokenizer.decode(t))
        for src, tgt in batches
        for s, t in zip(src, tgt, strict=True)
    )


# --------------------------------------------------------------------------- make_shards


def test_make_shards_writes_the_pairs_over_k_shards(files, corpus):
    assert [Path(f).name for f in files] == [
        f"train-{i:05d}-of-{SHARDS:05d}.jsonl.gz" for i in range(SHARDS)
    ]
    per_shard = [shard_pairs(f) for f in files]
    assert [len(p) for p in per_shard] == [PAIRS // SHARDS] * SHARDS
    written = Counter(pair for pairs in per_shard for pair in pairs)
    assert sum(written.values()) == PAIRS
    assert set(written) <= set(corpus)  # every pair comes from the corpus ...
    assert set(written) == set(corpus)  # ... and the first repetition holds all of it
    # each repetition is a permutation of the pool: no pair is written more often than
    # ceil(PAIRS / pool) times its count in the corpus
    repeats = -(-PAIRS // sum(corpus.values()))
    assert all(n <= repeats * corpus[pair] for pair, n in written.items())


def test_make_shards_rejects_bad_arguments(make_shards, shard_dir, data_root, tmp_path, capsys):
    root = ["--root", str(data_root)]
    assert make_shards.main(["--corpus", "europarl", *root, "--shards", "2", "--out", "x"]) == 1
    assert "unknown corpus 'europarl'" in capsys.readouterr().err
    assert make_shards.main(["--corpus", "multi30k:en", *root, "--shards", "2", "--out", "x"]) == 1
    assert "NAME:SRC-TGT" in capsys.readouterr().err
    again = ["--corpus", "multi30k", *root, "--shards", "2", "--out", str(shard_dir)]
    assert make_shards.main([*again, "--pairs", "10"]) == 1
    assert "already holds 4 shard file(s)" in capsys.readouterr().err
    few = ["--corpus", "multi30k", *root, "--shards", "8", "--pairs", "5", "--out", str(tmp_path)]
    assert make_shards.main(few) == 1
    assert "--pairs 5 is fewer than --shards 8" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_make_shards_command_with_own_files(repo_root, data_root, tmp_path):
    out = tmp_path / "own"
    cmd = [sys.executable, str(repo_root / "data_scripts" / "make_shards.py")]
    src, tgt = data_root / "multi30k" / "val.en.gz", data_root / "multi30k" / "val.de.gz"
    run = subprocess.run(
        [*cmd, "--src", str(src), "--tgt", str(tgt), "--shards", "2", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "1,014 pairs in 2 shards" in run.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["train-00000-of-00002.jsonl", "train-00001-of-00002.jsonl"]
    missing = subprocess.run(
        [*cmd, "--src", str(tmp_path / "nope.en"), "--tgt", str(tgt), "--shards", "2"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "--out" in missing.stderr  # argparse: required
    missing = subprocess.run(
        [*cmd, "--src", str(tmp_path / "nope.en"), "--tgt", str(tgt), "--shards", "2"]
        + ["--out", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "nope.en: file not found" in missing.stderr


# --------------------------------------------------------------------------- shard lists


def test_resolve_shards_sorts_and_names_a_pattern_matching_nothing(files, shard_dir):
    reverse = [str(shard_dir / f"train-0000{i}-of-00004.jsonl.gz") for i in (3, 1, 2, 0)]
    assert resolve_shards(reverse) == files
    pattern = str(shard_dir / "valid-*.jsonl")
    with pytest.raises(CorpusError, match="make_shards.py") as err:
        resolve_shards(pattern)
    assert repr(pattern) in str(err.value)
    with pytest.raises(CorpusError, match="is a folder"):
        resolve_shards(str(shard_dir))


def test_check_shards_for_ranks():
    check_shards_for_ranks(["a", "b", "c", "d"], 2)
    check_shards_for_ranks(["a"], 1)
    for count, ranks in ((3, 2), (1, 2)):
        with pytest.raises(ValueError, match="--shards K") as err:
            check_shards_for_ranks([f"s{i}" for i in range(count)], ranks)
        message = str(err.value)
        assert f"{count} shard file(s) for {ranks} ranks" in message
        assert f"multiple of {ranks}" in message


def test_stream_batches_checks_arguments_at_once(files, tokenizer):
    with pytest.raises(ValueError, match="3 shard file"):
        stream_batches(
            files[:3], tokenizer, tokenizer, **{**_options(), "rank": 0, "world_size": 2}
        )
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        stream_batches(files, tokenizer, tokenizer, **{**_options(), "rank": 2, "world_size": 2})


def _options() -> dict:
    return dict(epoch=0, seed=0, batch_tokens=100, batch_sentences=None, max_length=10, window=10)


def test_read_pairs_reads_in_file_order(files):
    first = shard_pairs(files[0])
    assert list(zip(*read_pairs(files, 100), strict=True)) == first[:100]
    both = shard_pairs(files[0]) + shard_pairs(files[1])
    assert list(zip(*read_pairs(files, len(first) + 5), strict=True)) == both[: len(first) + 5]
    assert read_pairs(files, 0) == ([], [])


def test_a_malformed_shard_is_named_with_its_line(tmp_path, tokenizer):
    bad = tmp_path / "train-00000-of-00001.jsonl"
    bad.write_text('{"src": "a man", "tgt": "ein Mann"}\n{"src": "two", "tgt\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=f"{bad}:2: not valid JSON"):
        read_pairs([str(bad)])
    with pytest.raises(CorpusError, match=f"{bad}:2: not valid JSON"):
        collect([str(bad)], tokenizer)


# --------------------------------------------------------------------------- the stream


def test_two_ranks_read_disjoint_whole_shards_covering_the_corpus(files, tokenizer):
    shards = [Counter(map(norm, shard_pairs(f))) for f in files]
    seen = []
    for rank in (0, 1):
        stats = StreamStats()
        batches = collect(files, tokenizer, stats, rank=rank, world_size=2)
        seen.append(decoded(batches, tokenizer))
        assert stats == StreamStats(read=PAIRS // 2, kept=PAIRS // 2)
    assert seen[0] + seen[1] == sum(shards, Counter())
    # whole shards: each rank's pairs are exactly two of the four shards
    owners = [sorted(i for i in range(SHARDS) if not shards[i] - seen[rank]) for rank in (0, 1)]
    assert sorted(owners[0] + owners[1]) == list(range(SHARDS)), owners
    for rank in (0, 1):
        assert seen[rank] == sum((shards[i] for i in owners[rank]), Counter())


def test_batches_respect_batch_tokens_and_max_length(files, tokenizer):
    stats = StreamStats()
    batches = collect(files[:1], tokenizer, stats, batch_tokens=300, max_length=14)
    assert stats.too_long > 0 and stats.read == PAIRS // SHARDS
    assert stats.read == stats.kept + stats.too_long + stats.empty
    assert sum(len(src) for src, _ in batches) == stats.kept
    for src, tgt in batches:
        width = max(len(s) for s in src + tgt) + 1  # + EOS/BOS
        assert width * len(src) <= 300 or len(src) == 1
        assert all(0 < len(s) <= 14 for s in src + tgt)
    sized = collect(files[:1], tokenizer, batch_sentences=64, max_length=14)
    assert {len(src) for src, _ in sized[:-1]} <= set(range(1, 65))
    assert sum(len(src) for src, _ in sized) == stats.kept


def test_same_epoch_same_batches_other_epoch_other_order(files, tokenizer):
    run = dict(rank=1, world_size=2, window=3000)
    first = collect(files, tokenizer, epoch=1, **run)
    assert collect(files, tokenizer, epoch=1, **run) == first
    other = collect(files, tokenizer, epoch=2, **run)
    assert other != first
    assert decoded(other, tokenizer) == decoded(first, tokenizer)  # same pairs, new order
    assert other[:20] != first[:20]


class CountingTokenizer:
    """A tokenizer without encode_batch that counts the texts it encodes."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    def encode(self, text: str) -> list[int]:
        self.calls += 1
        return self.inner.encode(text)


@pytest.mark.parametrize("window", [500, 2500])
def test_the_window_bounds_how_far_the_reader_runs_ahead(files, tokenizer, window):
    counting = CountingTokenizer(tokenizer)
    options = {**_options(), "batch_tokens": 500, "max_length": 200, "window": window}
    batches = stream_batches(files, counting, tokenizer, rank=0, world_size=1, **options)
    assert counting.calls == 0  # nothing is read before the first batch is asked for
    yielded, refills = 0, []
    while len(refills) < 4:  # the first window and three refills
        before = counting.calls
        src, _ = next(batches)
        if counting.calls != before:
            refills.append((yielded, counting.calls))
        yielded += len(src)
        # what was tokenized but not handed out: one window plus one tokenizer chunk
        assert counting.calls - yielded <= window + CHUNK
    batches.close()
    # the reader tokenizes only when a window is used up, and then one window more
    for k, (handed_out, tokenized) in enumerate(refills):
        assert handed_out == k * window
        assert (k + 1) * window <= tokenized <= (k + 1) * window + CHUNK
    assert tokenized < PAIRS


def test_dropped_pairs_are_counted(data_root, tmp_path, tokenizer):
    train = load_corpus("multi30k", data_root, "en", "de")["train"]
    pairs = list(zip(train.src[:300], train.tgt[:300], strict=True))
    pairs[5] = ("", pairs[5][1])
    pairs[17] = (pairs[17][0], "   ")
    pairs[30] = (" ".join([pairs[30][0]] * 8), pairs[30][1])  # far over max_length
    shard = tmp_path / "train-00000-of-00001.jsonl"
    with open(shard, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in pairs)
    max_length = 20
    long = sum(
        1
        for s, t in pairs
        if s.strip() and t.strip() and max(len(s.split()), len(t.split())) > max_length
    )
    stats = StreamStats()
    batches = collect([str(shard)], tokenizer, stats, max_length=max_length, window=128)
    assert stats.empty == 2 and stats.too_long == long >= 1
    assert stats == StreamStats(read=300, kept=300 - 2 - long, empty=2, too_long=long)
    kept = [norm(p) for p in pairs if p[0].strip() and p[1].strip()]
    kept = Counter(p for p in kept if max(len(p[0].split()), len(p[1].split())) <= max_length)
    assert decoded(batches, tokenizer) == kept
