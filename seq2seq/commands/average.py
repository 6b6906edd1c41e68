"""`seq2seq-average`: average the weights of several checkpoints into one.

    seq2seq-average --checkpoint A.pt B.pt C.pt -o averaged.pt
    seq2seq-average --run-dir RUN --last 5 -o RUN/checkpoints/averaged.pt

The output is written atomically; what is kept and dropped: seq2seq.training.averaging.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from seq2seq.checkpoint import save_checkpoint
from seq2seq.commands.common import command_parser, positive_int, run_cli
from seq2seq.training.averaging import average_checkpoints, newest_step_checkpoints

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-average", __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        "--checkpoints",
        dest="checkpoints",
        nargs="+",
        metavar="CKPT",
        help="checkpoint files or run directories, as seq2seq-translate takes them",
    )
    source.add_argument("--run-dir", help="a training run directory (with --last N)")
    parser.add_argument(
        "--last",
        type=positive_int,
        metavar="N",
        help="with --run-dir: average its N newest step_*.pt",
    )
    parser.add_argument("-o", "--output", required=True, help="where to write the average")
    return parser


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run_dir:
        if not args.last:
            parser.error("--run-dir needs --last N")
        paths = newest_step_checkpoints(args.run_dir, args.last)
    else:
        if args.last:
            parser.error("--last goes with --run-dir")
        paths = [Path(p) for p in args.checkpoints]
    output = Path(args.output)
    if output.resolve() in {p.resolve() for p in paths}:
        raise ValueError(f"--output {output} is one of the inputs; write the average elsewhere")
    save_checkpoint(output, average_checkpoints(paths))
    log.info("averaged %d checkpoints into %s: %s", len(paths), output, ", ".join(map(str, paths)))
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
