"""`seq2seq-sample --checkpoint CKPT --prime "The " --length 200 --temperature 0.8`

Generates text from a character language model (`+exp=char_lm`, `+exp=hello`):
prints the prime followed by LENGTH sampled characters.
"""

from __future__ import annotations

import argparse
import sys

import torch

from seq2seq.checkpoint import CheckpointError
from seq2seq.commands.common import add_device_argument, command_parser
from seq2seq.hardware import check_device
from seq2seq.lm.generation import sample_text
from seq2seq.lm.model import load_lm


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "seq2seq-sample",
        "Generate text from a character language model checkpoint "
        "(trained with `python -m seq2seq.train +exp=char_lm`). Prints the prime "
        "followed by LENGTH sampled characters.",
    )
    parser.add_argument(
        "--checkpoint", required=True, help="a checkpoint (.pt) or a run directory (best.pt)"
    )
    parser.add_argument("--prime", default="", help="text to start from (default: a new line)")
    parser.add_argument("--length", type=int, default=200, help="characters to generate")
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (reproducible text)")
    add_device_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = check_device(args.device, "--device")  # before the checkpoint loads
        model, vocab, _ = load_lm(args.checkpoint, device=device)
        generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
        text = sample_text(model, vocab, args.prime, args.length, args.temperature, generator)
    except (CheckpointError, ValueError) as exc:
        print(f"seq2seq-sample: error: {exc}", file=sys.stderr)
        return 2
    # UTF-8 whatever the locale, like seq2seq-translate.
    sys.stdout.buffer.write((text + "\n").encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
