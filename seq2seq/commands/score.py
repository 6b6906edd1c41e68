"""`seq2seq-score`: the model's log-probability of given translations.

For each line pair of --src and --ref: the natural-log probability the model gives
the reference (its subword tokens and EOS, teacher-forced, as fairseq's reference
scoring and sockeye-score compute it), the number of tokens, and the score per token.
Text output is one tab-separated line per pair: per-token score, total log-probability,
tokens; with --json, one JSON object per pair. A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import ExitStack

from seq2seq.commands.common import (
    add_checkpoint_argument,
    add_model_arguments,
    command_parser,
    load_translator,
    run_cli,
    utf8_stdout,
)
from seq2seq.data.reading import read_parallel


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-score", __doc__)
    add_checkpoint_argument(parser, "The model that scores")
    parser.add_argument("--src", required=True, help="source sentences, one per line")
    parser.add_argument("--ref", required=True, help="their translations, line by line")
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line pair")
    add_model_arguments(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sources, references = read_parallel(args.src, args.ref)  # mismatches fail before loading
    translator = load_translator(args)
    scores = translator.score(sources, references, batch_size=args.batch_size)
    with ExitStack() as stack:
        if args.output:
            sink = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="\n"))
        else:
            sink = utf8_stdout()
        for number, found in enumerate(scores, 1):
            if args.json:
                record = {
                    "line": number,
                    "logprob": round(found.logprob, 4),
                    "tokens": found.tokens,
                    "per_token": round(found.per_token, 4),
                }
                sink.write(json.dumps(record) + "\n")
            else:
                sink.write(f"{found.per_token:.4f}\t{found.logprob:.4f}\t{found.tokens}\n")
        sink.flush()
    total = sum(s.logprob for s in scores)
    tokens = sum(s.tokens for s in scores)
    if tokens:
        print(
            f"scored {len(scores)} pairs: log-probability {total:.2f} over {tokens} tokens, "
            f"{total / tokens:.4f} per token (perplexity {math.exp(-total / tokens):.2f})",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
