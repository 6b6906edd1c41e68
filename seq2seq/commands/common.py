"""Pieces shared by the command-line tools: the parser, search flags, safe line I/O, error exits.

The parser itself lives in seq2seq.commands.parsing (no torch: quick commands stay
quick); it is imported here so that a command finds everything in one place.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from seq2seq import registry
from seq2seq.checkpoint import CheckpointError
from seq2seq.commands.parsing import check_choice, command_parser  # noqa: F401 (re-exported)
from seq2seq.data.reading import CorpusError
from seq2seq.hardware import PRECISIONS, check_device, resolve_precision, tune_allocator
from seq2seq.registry import PluginError
from seq2seq.search import BATCH_SENTENCES, check_options

if TYPE_CHECKING:
    import torch

    from seq2seq.translation.translator import Translator

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


@dataclass
class SearchFlag:
    """One command-line flag made from a keyword parameter that search strategies share."""

    option: str  # the parameter's name, e.g. top_k
    kind: Callable[[str], Any]  # argparse type, from the type hint
    help: str
    strategies: list[str] = field(default_factory=list)  # the strategies that take it
    defaults: list[Any] = field(default_factory=list)  # each strategy's default for it

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")

    @property
    def default_text(self) -> str:
        """For --help, the default that every strategy taking the flag shares, if they agree
        (the flag's own default stays None, so that only a flag given reaches the strategy)."""
        values = {repr(d) for d in self.defaults}
        value = self.defaults[0] if len(values) == 1 else None
        if value is None or value is inspect.Parameter.empty:
            return ""
        return f" (default: {value})".replace("%", "%%")


def _flag_type(hint: Any) -> Callable[[str], Any]:
    """argparse type for a parameter's type hint (Optional[X] → X; anything else parsed)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    return {int: int, float: float, str: str}.get(hint, parse_value)


def _docstring_args(obj: Any) -> dict[str, str]:
    """Parameter help from a Google-style `Args:` section of the docstring."""
    found: dict[str, str] = {}
    name, in_args = None, False
    for line in inspect.cleandoc(getattr(obj, "__doc__", None) or "").splitlines():
        if not line.startswith(" ") and line.strip():
            in_args, name = line.strip() == "Args:", None
            continue
        head, sep, text = line.strip().partition(":")
        if in_args and sep and line.startswith("    ") and not line.startswith("     "):
            name = head.split(" ")[0]
            found[name] = text.strip()
        elif in_args and name and line.strip():
            found[name] += " " + line.strip()
    return found


Strategies = Mapping[str, Callable[..., Any]]


def _strategies(given: Strategies | None) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(name, function) of the `given` strategies, or else of every installed one; a
    strategy that fails to import is left out (choosing it reports why)."""
    if given is not None:
        yield from given.items()
        return
    for info in registry.available("seq2seq.search"):
        try:
            yield info.name, registry.load("seq2seq.search", info.name)
        except PluginError:
            continue


def search_flags(strategies: Strategies | None = None) -> dict[str, SearchFlag]:
    """The options of the strategies (default: every installed one) as flags; one flag
    per shared name."""
    flags: dict[str, SearchFlag] = {}
    for name, strategy in _strategies(strategies):
        params = registry.plugin_options("seq2seq.search", strategy) or []
        hints = registry._type_hints(strategy)
        docs = _docstring_args(strategy)
        for p in params:
            entry = flags.get(p.name) or SearchFlag(
                p.name, _flag_type(hints.get(p.name)), docs.get(p.name, "")
            )
            entry.help = entry.help or docs.get(p.name, "")
            entry.strategies.append(name)
            entry.defaults.append(p.default)
            flags[p.name] = entry
    return flags


def add_checkpoint_argument(
    parser: argparse.ArgumentParser,
    use: str,
    required: bool = True,
    several: str = "their ensemble",
):
    """--checkpoint: the same flag, taking the same things, in every translation command."""
    parser.add_argument(
        "--checkpoint",
        required=required,
        nargs="+",
        metavar="CKPT",
        help="a checkpoint file, a run folder (its checkpoints/best.pt) or an exported model "
        f"folder; several: {several}. {use}",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device, the same flag in every command that runs a model."""
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the model runs: cpu, cuda, cuda:N or mps; checked before the model loads",
    )


QUANTIZE_HELP = (
    "int8: dynamically quantized linear layers (CPU, fp32 precision): "
    "faster decoding, outputs within rounding of the fp32 model's"
)


def add_model_arguments(
    parser: argparse.ArgumentParser, quantize_help: str = QUANTIZE_HELP
) -> None:
    """How a loaded model runs (load_translator applies them): batch size, device,
    precision, threads; one definition, so translate and bleu agree."""
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=BATCH_SENTENCES,
        help="sentences per batch",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 where the CPU (AMX or AVX512-BF16) or GPU has native bf16, else "
        "fp32 (the choice is logged; fp32 with --quantize int8); bf16: autocast; "
        "fp16: autocast on a CUDA GPU",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="torch intra-op threads (default: torch's); the numpy engine decodes this many "
        "parts of a batch at once, one a core (default: one a core)",
    )
    parser.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help=quantize_help,
    )
    parser.add_argument(
        "--shortlist",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="decode each sentence over its shortlist (the model's frequent target tokens and "
        "those learnt for its source tokens): faster on CPUs, and may cost some BLEU; by "
        "default every target token is scored at every step",
    )


def add_search_arguments(
    parser: argparse.ArgumentParser,
    strategies: Strategies | None = None,
    quantize_help: str = QUANTIZE_HELP,
) -> None:
    """Search flags: the limits every strategy takes, then each strategy's own options
    (of `strategies`, default: every installed one).

    Call it after every other argument: a strategy option whose flag the command
    already has is left to --search-option.
    """
    group = parser.add_argument_group("search")
    group.add_argument(
        "--search",
        default="greedy",
        help="strategy from the seq2seq.search group: "
        + ", ".join(sorted({info.name for info in registry.available("seq2seq.search")})),
    )
    group.add_argument(
        "--max-length", type=positive_int, default=200, help="most tokens generated per sentence"
    )
    group.add_argument(
        "--max-length-ratio", type=float, default=2.0, help="most tokens per source token (+10)"
    )
    group.add_argument(
        "--search-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the chosen strategy that has no flag of its own (repeatable)",
    )
    add_model_arguments(parser, quantize_help)
    taken = set(parser._option_string_actions)
    for entry in search_flags(strategies).values():
        if entry.flag in taken:
            continue
        text = f"{entry.help.rstrip('.')} " if entry.help else ""
        group.add_argument(
            entry.flag,
            dest=f"search_{entry.option}",
            type=entry.kind,
            default=None,
            metavar=entry.option.upper(),
            help=f"{text}[--search {', '.join(entry.strategies)}]{entry.default_text}",
        )


def load_translator(
    args: argparse.Namespace, checkpoints: Sequence[str] | None = None
) -> Translator:
    """The model(s) of --checkpoint (or of `checkpoints`: one ensemble) on --device at
    --precision with --threads; the device and precision are checked before anything
    loads."""
    import torch

    from seq2seq.translation.translator import Translator

    device = check_device(args.device, "--device")
    quantize = getattr(args, "quantize", "none")
    precision = None  # auto always resolves: its choice is logged once the model is there,
    if args.precision != "auto":  # so that a bad --checkpoint is one error line alone
        precision = decoding_precision(device, args.precision, quantize)  # fails early
    if args.threads:
        torch.set_num_threads(args.threads)
    translator = Translator.from_checkpoints(checkpoints or args.checkpoint, device=str(device))
    if getattr(args, "shortlist", False):
        if translator.shortlist is None:
            raise ValueError(
                f"--shortlist: {' '.join(checkpoints or args.checkpoint)} has no vocabulary "
                "shortlist (it is learnt when training saves its first checkpoint, except "
                "when the corpus is streamed)"
            )
        translator.use_shortlist = True
    translator.precision = precision or decoding_precision(device, "auto", quantize)
    if quantize != "none":
        translator.quantize(quantize)
    return translator


def decoding_precision(
    device: torch.device | str,
    precision: str,
    quantize: str = "none",
    flags: frozenset[str] | None = None,
) -> str:
    """--precision resolved for `device` (see seq2seq.hardware.resolve_precision). int8
    quantization runs in fp32: with --quantize int8, auto is fp32 (logged), and bf16 or
    fp16 is a ValueError before any model loads. `flags` (CPU flags) defaults to this
    machine's."""
    if quantize != "none" and precision == "auto":
        log.info("--precision=auto: fp32, because --quantize %s needs fp32", quantize)
        return "fp32"
    if quantize != "none" and precision != "fp32":
        raise ValueError(f"--quantize {quantize} needs --precision fp32 (or auto), not {precision}")
    return resolve_precision(device, precision, "--precision", flags)


def parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None, "null": None}.get(text.lower(), text)


def search_options(
    args: argparse.Namespace, strategies: Strategies | None = None
) -> dict[str, Any]:
    """Keyword options for the chosen search (one of `strategies`, default: the installed
    ones), checked before any model loads.

    A flag given for a strategy that does not take it, or a value the strategy
    cannot use, is a ValueError (exit 2); an unknown strategy a PluginError.
    """
    options: dict[str, Any] = {
        "max_length": args.max_length,
        "max_length_ratio": args.max_length_ratio,
    }
    flags = search_flags(strategies)
    for entry in flags.values():
        value = getattr(args, f"search_{entry.option}", None)
        if value is None:
            continue
        if args.search not in entry.strategies:
            raise ValueError(
                f"{entry.flag} needs --search {' or '.join(entry.strategies)} "
                f"('{args.search}' does not take it; got {entry.flag} {value})"
            )
        options[entry.option] = value
    for item in args.search_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--search-option expects KEY=VALUE, got '{item}'")
        options[key.replace("-", "_")] = parse_value(value)
    try:
        check_options(args.search, options, (strategies or {}).get(args.search))
    except ValueError as exc:  # the strategy names its options; the user typed flags
        message = str(exc)
        for entry in flags.values():
            message = re.sub(rf"\b{entry.option}\b", entry.flag, message)
        raise ValueError(message) from None
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


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is logged, not when the handler
    was made: a command run in-process (tests, notebooks) may have replaced it since."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr() -> None:
    """INFO and above to stderr, once per process. Handlers left writing to a closed
    stream (a Hydra command run in-process before this one sets some up) are dropped:
    each record would otherwise print a logging error."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    if any(isinstance(h, _CurrentStderr) for h in root.handlers):
        return
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_cli(body: Callable[[], int | None]) -> None:
    """Turn known user errors into one clear line on stderr and exit status 2."""
    _log_to_stderr()
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


def evaluation_set(
    config: dict[str, Any], src: str | None, ref: str | None, split: str, data_root: str | None
) -> tuple[list[str], list[str], str]:
    """(sources, references, name): the files --src/--ref, or else a split of the corpus
    the model was trained on."""
    from pathlib import Path

    from seq2seq.data.corpora import load_corpus
    from seq2seq.data.reading import read_parallel

    if src:
        return (*read_parallel(src, ref), f"{src} -> {ref}")
    data = config["data"]
    root = data_root or data["root"]
    splits = load_corpus(data["corpus"], Path(root), data["src_lang"], data["tgt_lang"])
    check_choice("--split", split, list(splits), f"split in corpus {data['corpus']!r}")
    found = splits[split]
    name = f"{data['corpus']}:{split} {data['src_lang']}-{data['tgt_lang']}"
    return found.src, found.tgt, name
