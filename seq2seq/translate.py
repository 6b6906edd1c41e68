"""`seq2seq-translate`: one output line per input line, always, in order, streamed."""

from __future__ import annotations

import argparse
import itertools
import sys
from contextlib import ExitStack

import torch

from . import registry
from .cli import (
    add_search_arguments,
    positive_int,
    read_lines_safely,
    run_cli,
    search_options,
    utf8_stdout,
)
from .inference import Translator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2seq-translate", description=__doc__)
    parser.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        metavar="CKPT",
        help="checkpoint file or run directory; several: decode with their ensemble",
    )
    parser.add_argument("-i", "--input", help="source file (default: stdin)")
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument(
        "--chunk-lines",
        type=positive_int,
        default=2000,
        help="lines read and translated at a time",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="torch intra-op threads (default: torch's)"
    )
    add_search_arguments(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = search_options(args)  # inconsistent flags fail before the model loads
    registry.load("seq2seq.search", args.search)  # so does an unknown strategy
    if args.threads:
        torch.set_num_threads(args.threads)
    with ExitStack() as stack:
        # Open the input first: a wrong path fails at once, before the output is created.
        source = stack.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        translator = Translator.from_checkpoints(args.checkpoint, device=args.device)
        if args.output:
            sink = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="\n"))
        else:
            sink = utf8_stdout()
        lines = read_lines_safely(source, args.input or "<stdin>")
        # Typed at a terminal: answer each line as it comes rather than every chunk.
        chunk_lines = 1 if source.isatty() else args.chunk_lines
        while chunk := list(itertools.islice(lines, chunk_lines)):
            results = translator.translate(
                chunk, search=args.search, batch_size=args.batch_size, **options
            )
            for hyps in results:
                # detokenize() maps tabs and line breaks to spaces: one line per input line.
                sink.write("\t".join(translator.detokenize(h) for h in hyps[: args.nbest]) + "\n")
            sink.flush()
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
