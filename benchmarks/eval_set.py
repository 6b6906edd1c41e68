"""The parallel test set the decoding benchmarks translate unless told otherwise:
Multi30k's test_2016_flickr English→German under $SEQ2SEQ_DATA (else ./data)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from seq2seq.data.reading import read_parallel

MULTI30K = Path(os.environ.get("SEQ2SEQ_DATA", "data")) / "multi30k"


def add_test_set_arguments(parser: argparse.ArgumentParser) -> None:
    """--src and --ref, defaulting to test_2016_flickr."""
    parser.add_argument("--src", type=Path, default=MULTI30K / "test_2016_flickr.en.gz")
    parser.add_argument("--ref", type=Path, default=MULTI30K / "test_2016_flickr.de.gz")


def read_test_set(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The sources and references of --src and --ref, checked to pair up line by line."""
    return read_parallel(args.src, args.ref)
