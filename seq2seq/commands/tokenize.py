"""`seq2seq-tokenize`: train a tokenizer, or use a trained one on text, outside training.

  seq2seq-tokenize train --src train.en --tgt train.de --type sentencepiece --vocab-size 8000 -o RUN
  seq2seq-tokenize encode --tokenizer RUN < text.en > pieces.en
  seq2seq-tokenize encode --tokenizer RUN --ids --side tgt < text.de > ids.de
  seq2seq-tokenize decode --tokenizer RUN --ids --side tgt < ids.de > text.de
  seq2seq-tokenize vocab --tokenizer RUN

`train` runs the tokenizer training of seq2seq-train (same function, options and cleaning
of empty pairs) and writes what a run writes: RUN/tokenizer/{src,tgt}/ and
RUN/tokenizer/tokenizers.json. --tokenizer takes such a folder, a training run folder or a
checkpoint (as seq2seq-translate reads it). encode/decode write one line per input line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO, TextIO

from seq2seq import registry
from seq2seq.checkpoint import load_checkpoint
from seq2seq.commands.common import (
    command_parser,
    parse_value,
    positive_int,
    read_lines_safely,
    run_cli,
    utf8_stdout,
)
from seq2seq.data.cleaning import drop_empty_pairs
from seq2seq.data.corpora import ParallelSplit
from seq2seq.data.pipeline import build_tokenizers
from seq2seq.data.reading import read_lines
from seq2seq.tokenizers import Tokenizer, train_tokenizer
from seq2seq.tokenizers.files import STATE_NAME, load_tokenizers, save_tokenizers, tokenizer_states

log = logging.getLogger("seq2seq")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-tokenize", __doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a tokenizer on text files")
    train.add_argument("--src", required=True, help="source-side training text, one line each")
    train.add_argument(
        "--tgt", help="target-side text, line-aligned with --src (without it: one tokenizer)"
    )
    train.add_argument(
        "--type",
        default="sentencepiece",
        help="a tokenizer of the seq2seq.tokenizers group: "
        + ", ".join(sorted({i.name for i in registry.available("seq2seq.tokenizers")})),
    )
    train.add_argument(
        "--vocab-size", type=positive_int, default=8000, help="pieces in the vocabulary"
    )
    train.add_argument(
        "--joint",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one vocabulary for both sides (as tokenizer.joint); --no-joint needs --tgt",
    )
    train.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training option of the tokenizer (as tokenizer.options), e.g. model_type=bpe",
    )
    train.add_argument(
        "-o",
        "--output",
        "--out",
        dest="output",
        required=True,
        metavar="DIR",
        help="folder to write DIR/tokenizer/ into (a run folder)",
    )
    for name, text in (
        ("encode", "text → pieces (or ids with --ids), one line per line"),
        ("decode", "pieces (or ids with --ids) → text, one line per line"),
        ("vocab", "the vocabulary: id, tab, piece"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--tokenizer",
            required=True,
            metavar="PATH",
            help="a tokenizer folder (from train), a training run folder or a checkpoint",
        )
        sub.add_argument(
            "--side", choices=("src", "tgt"), default="src", help="the source or target tokenizer"
        )
        if name != "vocab":
            sub.add_argument("--ids", action="store_true", help="token ids instead of pieces")
            sub.add_argument("-i", "--input", help="input file (default: stdin)")
        sub.add_argument("-o", "--output", help="output file (default: stdout)")
    return parser


# ----------------------------------------------------------------------- train
def _options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got '{item}'")
        options[key.replace("-", "_")] = parse_value(value)
    return options


def train(args: argparse.Namespace) -> int:
    registry.load("seq2seq.tokenizers", args.type)  # an unknown type fails before any reading
    if not args.joint and args.tgt is None:
        raise ValueError("--no-joint trains one tokenizer per side: give --tgt too")
    options = _options(args.option)
    src = read_lines(args.src)
    if args.tgt is None:  # one text: what a joint tokenizer trains on is the text itself
        text = [line for line in src if line.strip()]
        if not text:
            raise ValueError(f"{args.src}: no non-empty line to train on")
        src_tok = tgt_tok = train_tokenizer(args.type, text, args.vocab_size, **options)
        lines = len(text)
    else:
        pairs = ParallelSplit(*drop_empty_pairs(src, read_lines(args.tgt))[:2])
        if not pairs.src:
            raise ValueError(f"{args.src}, {args.tgt}: no pair with both sides non-empty")
        config = SimpleNamespace(
            type=args.type, vocab_size=args.vocab_size, joint=args.joint, options=options
        )
        src_tok, tgt_tok = build_tokenizers(config, pairs)
        lines = len(pairs.src)
    folder = save_tokenizers(Path(args.output) / "tokenizer", args.type, src_tok, tgt_tok).parent
    sizes = f"{src_tok.vocab_size}" + ("" if src_tok is tgt_tok else f"/{tgt_tok.vocab_size}")
    log.info(
        "%s tokenizer%s, vocabulary %s, trained on %d lines/pairs: %s",
        args.type,
        " (joint)" if src_tok is tgt_tok else "s",
        sizes,
        lines,
        folder,
    )
    return 0


# ------------------------------------------------------------------ the others
def load_tokenizer_pair(path: str | Path) -> tuple[Tokenizer, Tokenizer]:
    """(src, tgt) tokenizers from a tokenizer folder, a run folder or a checkpoint file.

    A run folder gives the tokenizers of the checkpoint seq2seq-translate would load
    (checkpoints/best.pt), else those training wrote to its tokenizer/ folder.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(
            f"{p}: no such file or folder (give a tokenizer folder, a run folder or a checkpoint)"
        )
    if p.is_file():
        return tokenizer_states(load_checkpoint(p)["tokenizers"])
    if (p / STATE_NAME).is_file():
        return load_tokenizers(p)
    if (p / "checkpoints" / "best.pt").is_file() or (p / "best.pt").is_file():
        return tokenizer_states(load_checkpoint(p)["tokenizers"])
    if (p / "tokenizer" / STATE_NAME).is_file():
        return load_tokenizers(p / "tokenizer")
    raise ValueError(
        f"{p}: no tokenizer found (expected {STATE_NAME} or tokenizer/{STATE_NAME}, written by "
        "seq2seq-tokenize train or seq2seq-train, or a checkpoint checkpoints/best.pt)"
    )


def _tokenizer(args: argparse.Namespace) -> Tokenizer:
    src, tgt = load_tokenizer_pair(args.tokenizer)
    return src if args.side == "src" else tgt


def _vocabulary(tokenizer: Tokenizer) -> list[str]:
    return list(tokenizer.pieces(list(range(tokenizer.vocab_size))))


def _encode_line(tokenizer: Tokenizer, line: str, ids: bool) -> str:
    tokens = tokenizer.encode(line)
    return " ".join(map(str, tokens) if ids else tokenizer.pieces(tokens))


class _Decoder:
    """One line of ids or pieces → text; a token not in the vocabulary names its line."""

    def __init__(self, tokenizer: Tokenizer, ids: bool, name: str) -> None:
        self.tokenizer, self.ids, self.name = tokenizer, ids, name
        self.index = (
            {} if ids else {p: i for i, p in reversed(list(enumerate(_vocabulary(tokenizer))))}
        )

    def __call__(self, number: int, line: str) -> str:
        tokens = line.split()
        size = self.tokenizer.vocab_size
        if self.ids:
            found = [int(t) if t.isdigit() and int(t) < size else None for t in tokens]
            wanted = f"a token id (a whole number in 0..{size - 1})"
        else:
            found = [self.index.get(t) for t in tokens]
            wanted = "a piece of this vocabulary (seq2seq-tokenize vocab lists them)"
        bad = [t for t, i in zip(tokens, found, strict=True) if i is None]
        if bad:
            raise ValueError(f"{self.name}:{number}: {bad[0]!r} is not {wanted}")
        return self.tokenizer.decode(found)


def _shown(piece: str) -> str:
    """A piece on one line: tabs, newlines and other unprintable characters escaped."""
    return piece if piece.isprintable() else repr(piece)[1:-1]


def apply(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        # Open the input first: a wrong path fails before anything is loaded or written.
        source: BinaryIO | None = None
        if args.command != "vocab":
            source = stack.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        tokenizer = _tokenizer(args)
        sink: TextIO
        if args.output:
            sink = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="\n"))
        else:
            sink = utf8_stdout()
        if args.command == "vocab":
            for i, piece in enumerate(_vocabulary(tokenizer)):
                sink.write(f"{i}\t{_shown(piece)}\n")
            return 0
        name = args.input or "<stdin>"
        decoder = _Decoder(tokenizer, args.ids, name) if args.command == "decode" else None
        interactive = source.isatty()
        for number, line in enumerate(read_lines_safely(source, name), 1):
            if decoder is not None:
                out = decoder(number, line).replace("\n", " ")
            else:
                out = _encode_line(tokenizer, line, args.ids)
            sink.write(out + "\n")
            if interactive:
                sink.flush()
    return 0


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return train(args) if args.command == "train" else apply(args)


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
