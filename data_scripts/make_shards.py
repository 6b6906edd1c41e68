#!/usr/bin/env python
"""Build JSON-lines training shards for streaming (``data.streaming=true``).

    python data_scripts/make_shards.py --corpus multi30k tatoeba_en_es --root $SEQ2SEQ_DATA \\
        --pairs 5000000 --shards 16 --out DIR [--seed 1] [--gzip]
    python data_scripts/make_shards.py --src train.en --tgt train.de --shards 8 --out DIR

Each line of a shard is ``{"src": "...", "tgt": "..."}``. The training splits of the
named corpora (``NAME`` or ``NAME:SRC-TGT``; multi30k defaults to en-de, tatoeba_en_es
to en-es), or two line-aligned files, are pooled; ``--pairs`` pairs (default: the
pool once) are written by repeating the pool, each repetition in a fresh random order,
and dealt round-robin over ``--shards`` files ``train-00000-of-00016.jsonl[.gz]``, so
shard sizes differ by at most one pair. Memory is bounded by the pool, not by
``--pairs``. Pairs are written verbatim: the streaming reader drops (and counts) empty
and too-long pairs. Pick ``--shards`` as a multiple of the number of training
processes: every rank reads whole shards.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

try:
    from seq2seq.data.corpora import default_root, load_corpus
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seq2seq.data.corpora import default_root, load_corpus
from seq2seq.data.reading import CorpusError, read_parallel

#: corpus name -> its default (src_lang, tgt_lang)
DEFAULT_LANGS = {"multi30k": ("en", "de"), "tatoeba_en_es": ("en", "es")}
SHARD_GLOB = "train-*-of-*.jsonl*"


def shard_name(index: int, count: int, gzip_: bool) -> str:
    return f"train-{index:05d}-of-{count:05d}.jsonl" + (".gz" if gzip_ else "")


def parse_corpus_spec(spec: str) -> tuple[str, str, str]:
    """``NAME`` or ``NAME:SRC-TGT`` -> (name, src_lang, tgt_lang)."""
    name, _, langs = spec.partition(":")
    if name not in DEFAULT_LANGS:
        raise CorpusError(
            f"--corpus {spec!r}: unknown corpus {name!r}; choose from "
            f"{', '.join(DEFAULT_LANGS)} (or give your own files with --src/--tgt)."
        )
    if not langs:
        return (name, *DEFAULT_LANGS[name])
    src, sep, tgt = langs.partition("-")
    if not (src and sep and tgt):
        raise CorpusError(
            f"--corpus {spec!r}: write the languages as NAME:SRC-TGT, e.g. multi30k:en-de."
        )
    return name, src, tgt


def load_pool(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """All training pairs of the requested sources, pooled in the order given."""
    if args.src or args.tgt:
        if not (args.src and args.tgt):
            raise CorpusError("give both --src and --tgt (two line-aligned files).")
        return read_parallel(args.src, args.tgt)
    src: list[str] = []
    tgt: list[str] = []
    for spec in args.corpus:
        name, src_lang, tgt_lang = parse_corpus_spec(spec)
        train = load_corpus(name, args.root, src_lang, tgt_lang)["train"]
        print(f"{name} {src_lang}-{tgt_lang}: {len(train):,} training pairs")
        src.extend(train.src)
        tgt.extend(train.tgt)
    return src, tgt


def _open_out(path: Path, gzip_: bool) -> IO[str]:
    if gzip_:
        return gzip.open(path, "wt", encoding="utf-8", newline="\n", compresslevel=6)
    return open(path, "w", encoding="utf-8", newline="\n")


def write_shards(
    src: list[str],
    tgt: list[str],
    out: Path,
    shards: int,
    pairs: int,
    seed: int,
    gzip_: bool = False,
) -> list[tuple[Path, int]]:
    """Write `pairs` pairs of the pool into `shards` files under `out`; return (file, count).

    The files appear under their final names only once all are complete, so an
    interrupted run never leaves a set that looks whole."""
    rng = random.Random(seed)
    final = [out / shard_name(i, shards, gzip_) for i in range(shards)]
    partial = [p.with_name("." + p.name + ".partial") for p in final]
    counts = [0] * shards
    handles = [_open_out(p, gzip_) for p in partial]
    try:
        written = 0
        order = list(range(len(src)))
        while written < pairs:
            rng.shuffle(order)  # a fresh permutation for every repetition of the pool
            for i in order[: pairs - written]:
                shard = written % shards
                line = json.dumps({"src": src[i], "tgt": tgt[i]}, ensure_ascii=False)
                handles[shard].write(line + "\n")
                counts[shard] += 1
                written += 1
    finally:
        for handle in handles:
            handle.close()
    for tmp, path in zip(partial, final, strict=True):
        tmp.replace(path)
    return list(zip(final, counts, strict=True))


def _prepare_out(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    old = sorted(out.glob(SHARD_GLOB))
    if old and not overwrite:
        raise CorpusError(
            f"--out {out} already holds {len(old)} shard file(s) (e.g. {old[0].name}); a glob "
            "over the folder would mix old and new shards. Use an empty folder, or --overwrite "
            "to delete them first."
        )
    for path in old:
        path.unlink()


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Build JSON-lines training shards ({'src','tgt'} per line) for streaming.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--corpus",
        nargs="+",
        metavar="NAME[:SRC-TGT]",
        help="named corpora whose training splits are pooled: multi30k (default en-de), "
        "tatoeba_en_es (default en-es); e.g. multi30k:en-fr",
    )
    source.add_argument("--src", type=Path, help="your own source file (plain or .gz)")
    p.add_argument("--tgt", type=Path, help="the line-aligned target file (with --src)")
    p.add_argument("--root", type=Path, help="data root of --corpus (default: $SEQ2SEQ_DATA)")
    p.add_argument("--pairs", type=int, help="pairs to write (default: the pool once)")
    p.add_argument("--shards", type=int, required=True, help="number of shard files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=1, help="seed of the permutations (default 1)")
    p.add_argument("--gzip", action="store_true", help="write .jsonl.gz instead of .jsonl")
    p.add_argument("--overwrite", action="store_true", help="delete old shards in --out first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.tgt and not args.src:
        parser.error("--tgt needs --src (two line-aligned files)")
    if args.shards < 1:
        parser.error(f"--shards must be >= 1, got {args.shards}")
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64  # all shards are open at once
    if args.shards > open_files > 0:
        parser.error(
            f"--shards {args.shards} exceeds the open-file limit ({open_files} + 64, ulimit -n); "
            "raise it or write fewer shards"
        )
    if args.pairs is not None and args.pairs < 1:
        parser.error(f"--pairs must be >= 1, got {args.pairs}")
    if args.root is None:
        args.root = default_root()
    try:
        src, tgt = load_pool(args)
        if not src:
            raise CorpusError("the pool is empty: the given corpus or files hold no pairs.")
        pairs = len(src) if args.pairs is None else args.pairs
        if pairs < args.shards:
            raise CorpusError(
                f"--pairs {pairs} is fewer than --shards {args.shards}: some shards would be "
                "empty. Write more pairs or fewer shards."
            )
        _prepare_out(args.out, args.overwrite)
        files = write_shards(src, tgt, args.out, args.shards, pairs, args.seed, args.gzip)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    empty = sum(1 for s, t in zip(src, tgt, strict=True) if not (s.strip() and t.strip()))
    for path, count in files:
        print(f"{path}\t{count:,} pairs")
    print(
        f"{pairs:,} pairs in {len(files)} shards ({pairs / len(src):.2f}x the pool of "
        f"{len(src):,} pairs, {empty:,} of them with an empty side) under {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
