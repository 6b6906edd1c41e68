"""Pieces shared by the command-line tools: search flags, safe line I/O, error exits."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TextIO

from seq2seq.checkpoint import CheckpointError
from seq2seq.data.reading import CorpusError
from seq2seq.hardware import tune_allocator
from seq2seq.registry import PluginError

log = logging.getLogger("seq2seq")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 would silently translate nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (0 switches the feature off)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# Flags of the built-in strategies beyond beam size/n-best: flag -> (option, type, strategy, help).
STRATEGY_FLAGS: dict[str, tuple[str, Callable[[str], Any], str, str]] = {
    "--min-length": ("min_length", non_negative_int, "beam", "no EOS before this many tokens"),
    "--no-repeat-ngram-size": (
        "no_repeat_ngram_size",
        non_negative_int,
        "beam",
        "never repeat an n-gram of this size within a hypothesis (0 = off)",
    ),
    "--coverage-penalty": (
        "coverage_penalty",
        float,
        "beam",
        "GNMT coverage penalty beta (0 = off; needs an attention decoder)",
    ),
    "--temperature": ("temperature", float, "sample", "divide logits by this (sample)"),
    "--top-k": ("top_k", non_negative_int, "sample", "sample among the k best tokens (0 = off)"),
    "--top-p": ("top_p", float, "sample", "nucleus: smallest set with this mass (1 = off)"),
    "--seed": ("seed", int, "sample", "seed of the sampler: same seed, same output"),
}


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument(
        "--search",
        default="greedy",
        help="strategy from the seq2seq.search group: greedy, beam, sample, …",
    )
    group.add_argument("--beam-size", type=positive_int, default=5)
    group.add_argument(
        "--nbest",
        type=positive_int,
        default=1,
        help="hypotheses per input line (beam), tab-separated on that line",
    )
    group.add_argument("--length-penalty", type=float, default=1.0, help="GNMT alpha (beam)")
    group.add_argument(
        "--max-length", type=positive_int, default=200, help="most tokens generated per sentence"
    )
    group.add_argument(
        "--max-length-ratio", type=float, default=2.0, help="most tokens per source token (+10)"
    )
    for flag, (_, kind, strategy, text) in STRATEGY_FLAGS.items():
        group.add_argument(flag, type=kind, default=None, help=f"{text} [--search {strategy}]")
    group.add_argument(
        "--search-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra option passed to a search plugin (repeatable)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="sentences per batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="bf16: autocast, where the hardware has native bf16 (AMX CPUs, recent GPUs); "
        "fp16: autocast on a CUDA GPU",
    )


def load_translator(args):
    """The model(s) of --checkpoint on --device at --precision (checked before loading)."""
    from seq2seq.hardware import check_precision
    from seq2seq.translation.translator import Translator

    check_precision(args.device, args.precision, "--precision")
    translator = Translator.from_checkpoints(args.checkpoint, device=args.device)
    translator.precision = args.precision
    return translator


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None, "null": None}.get(text.lower(), text)


def search_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the chosen search; inconsistent flags are a ValueError (exit 2)."""
    options: dict[str, Any] = {
        "max_length": args.max_length,
        "max_length_ratio": args.max_length_ratio,
    }
    if args.search == "beam":
        if args.nbest > args.beam_size:
            raise ValueError(f"--nbest {args.nbest} cannot exceed --beam-size {args.beam_size}")
        options.update(
            beam_size=args.beam_size, nbest=args.nbest, length_penalty=args.length_penalty
        )
    elif args.nbest > 1:
        raise ValueError(
            f"--nbest {args.nbest} needs --search beam ('{args.search}' gives one hypothesis)"
        )
    options.update(_strategy_flags(args))
    for item in args.search_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--search-option expects KEY=VALUE, got '{item}'")
        options[key.replace("-", "_")] = _parse_value(value)
    return options


def _strategy_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The built-in strategy flags that were given; one meant for another strategy is an error."""
    options = {}
    for flag, (key, _, strategy, _) in STRATEGY_FLAGS.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        if args.search != strategy:
            raise ValueError(
                f"{flag} needs --search {strategy} (got --search {args.search}; a plugin's "
                f"options go through --search-option KEY=VALUE)"
            )
        options[key] = value
    if args.search == "sample":
        from seq2seq.search.sample import check_sample_options

        check_sample_options(
            options.get("temperature", 1.0), options.get("top_k", 0), options.get("top_p", 1.0)
        )
    if options.get("coverage_penalty", 0.0) < 0:
        raise ValueError(f"--coverage-penalty must be >= 0, got {options['coverage_penalty']}")
    return options


def utf8_stdout() -> TextIO:
    """stdout writing UTF-8 with '\\n' line ends, whatever the locale says."""
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8", newline="\n")
    return stream


def read_lines_safely(stream: BinaryIO, name: str) -> Iterator[str]:
    """Lines split on '\\n' only; invalid UTF-8 is replaced (with a warning), never fatal."""
    for number, raw in enumerate(stream, 1):
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            log.warning("%s:%d: invalid UTF-8 (%s); replaced with U+FFFD", name, number, exc.reason)
            yield raw.decode("utf-8", errors="replace")


def describe_error(exc: BaseException) -> str:
    """One line for a user error; OS errors name their file first."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def run_cli(body: Callable[[], int | None]) -> None:
    """Turn known user errors into one clear line on stderr and exit status 2."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    tune_allocator()
    try:
        sys.exit(body() or 0)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix filters do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(141)
    except (CheckpointError, CorpusError, PluginError, ValueError, OSError) as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
