"""`seq2seq-translate`: one output line per input line, always, in order, streamed.

With --print-alignment each translation is followed, on its line, by a tab and its
hard alignment; with --plot-attention DIR, every non-empty input line N also gets
an attention heatmap DIR/<N, zero-padded to 6 digits>.png (e.g. DIR/000001.png).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.checkpoint import CheckpointError
from seq2seq.commands.common import (
    Strategies,
    add_checkpoint_argument,
    add_search_arguments,
    command_parser,
    load_translator,
    positive_int,
    read_lines_safely,
    run_cli,
    search_options,
    utf8_stdout,
)
from seq2seq.hardware import blas_pinned_below_cpu
from seq2seq.search import Hypothesis
from seq2seq.translation.model_folder import is_model_folder
from seq2seq.translation.output import Translation, clean_line

if TYPE_CHECKING:
    from seq2seq.runtime.translator import NumpyTranslator
    from seq2seq.translation.translator import Translator

log = logging.getLogger("seq2seq")

ENGINES = ("auto", "torch", "numpy")


def build_parser(strategies: Strategies | None = None) -> argparse.ArgumentParser:
    """The command's flags; with `strategies`, only their search options (the numpy
    runtime's parser, built without importing a torch strategy)."""
    parser = command_parser("seq2seq-translate", __doc__)
    add_checkpoint_argument(parser, "The model that translates")
    parser.add_argument("-i", "--input", help="source file (default: stdin)")
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text: the translation (with --nbest, the hypotheses tab-separated); jsonl: one "
        'JSON object per input line, {"source", "text", "score"} plus "nbest" (with --nbest) '
        'and "alignment" (with --print-alignment)',
    )
    parser.add_argument(
        "--print-scores",
        action="store_true",
        help="text format: put each hypothesis' score (its log-probability; beam: "
        "length-normalised) and a tab before it",
    )
    parser.add_argument(
        "--confidence",
        action="store_true",
        help="how far to trust each line: its mean log-probability per token (near 0: sure; "
        "low: out of its depth) and flags for a source unlike the training data "
        "(unknown_source: a third or more of its pieces unknown; long_source: longer than "
        "99%% of the training sources). text: two leading tab-separated fields, confidence "
        'then the comma-separated flags (empty if none); jsonl: "confidence" and "flags"',
    )
    parser.add_argument(
        "--chunk-lines",
        type=positive_int,
        default=2000,
        help="lines read and translated at a time",
    )
    attention = parser.add_argument_group("attention (needs an attention decoder)")
    attention.add_argument(
        "--print-alignment",
        action="store_true",
        help="after each translation, a tab and its hard alignment in Pharaoh format (as "
        "fast_align and fairseq's --print-alignment write it): space-separated SRC-TGT pairs "
        "of 0-based subword token indices (source as the model's tokenizer splits it, target "
        "as generated, EOS excluded); each target token is linked to the source token it "
        "attends to most. One line per input line still; an empty input line gives a line "
        "holding only the tab",
    )
    attention.add_argument(
        "--plot-attention",
        metavar="DIR",
        help="write one attention heatmap PNG per non-empty input line to DIR (created if "
        "missing), named by input line number, 1-based and zero-padded: DIR/000001.png; "
        "source subword tokens across the top, target tokens (with </s>) down the side; "
        "with --nbest, the best hypothesis. Empty input lines get no file",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="what runs the model. numpy: the built-in networks without torch, for an "
        "exported model folder (seq2seq-export), greedy or beam search (start-up in a "
        "fraction of a second instead of seconds; same output within float32 rounding); "
        "torch: every model and option; auto: numpy where it can run, torch otherwise",
    )
    add_search_arguments(parser, strategies)  # last: strategy options never shadow the above
    return parser


class _NotForRuntime(Exception):
    """The numpy runtime's parser could not read the command line."""


def _refuse(message: str) -> None:
    raise _NotForRuntime(message)


def runtime_refusal(args: argparse.Namespace, strategies: Strategies) -> str | None:
    """Why the numpy runtime cannot run these arguments, or None when it can."""
    from seq2seq.runtime.translator import folder_unsupported

    given = [
        flag
        for flag, on in (
            ("--print-alignment", args.print_alignment),
            ("--plot-attention", args.plot_attention is not None),
            ("--confidence", args.confidence),
            ("--quantize", args.quantize != "none"),
        )
        if on
    ]
    if given:
        return f"it does not take {', '.join(given)}"
    if args.search not in strategies:
        return f"--search {args.search} (it runs {' and '.join(strategies)})"
    if args.device != "cpu" or args.precision not in ("auto", "fp32"):
        return f"--device {args.device} --precision {args.precision} (it runs fp32 on the CPU)"
    if len(args.checkpoint) != 1:
        return "an ensemble of checkpoints"
    folder = args.checkpoint[0]
    if not is_model_folder(folder):
        return f"{folder} is not an exported model folder (seq2seq-export makes one)"
    try:
        reason = folder_unsupported(folder)
    except CheckpointError as exc:
        return str(exc)
    return None if reason is None else f"{folder} has {reason}"


def runtime_arguments(argv: Sequence[str] | None) -> tuple[argparse.Namespace | None, str]:
    """The command line as the numpy runtime's parser reads it, when --engine lets the
    runtime run it; else (None, why not). Reading it imports no torch strategy."""
    from seq2seq.runtime.search import STRATEGIES

    given = sys.argv[1:] if argv is None else list(argv)
    if any(flag in given for flag in ("-h", "--help", "--version")):
        return None, "help"
    parser = build_parser(STRATEGIES)
    parser.error = _refuse  # type: ignore[method-assign]  # the full parser says what is wrong
    try:
        args, unknown = parser.parse_known_args(given)
    except _NotForRuntime as exc:
        return None, str(exc)
    if unknown:
        return None, f"it does not take {' '.join(unknown)}"
    reason = runtime_refusal(args, STRATEGIES)
    if reason is not None and args.engine == "numpy":
        raise ValueError(f"--engine numpy cannot run this: {reason}")
    return (args, "") if reason is None and args.engine != "torch" else (None, reason or "")


def load_runtime_translator(args: argparse.Namespace) -> NumpyTranslator:
    from seq2seq.runtime.translator import NumpyTranslator

    translator = NumpyTranslator.from_folder(args.checkpoint[0])
    if args.shortlist:
        if translator.shortlist is None:
            raise ValueError(f"--shortlist: {args.checkpoint[0]} has no vocabulary shortlist")
        translator.use_shortlist = True
    if args.threads:
        translator.threads = args.threads
    log.info("--engine=%s: the numpy runtime runs %s (fp32)", args.engine, args.checkpoint[0])
    slow_blas = blas_pinned_below_cpu()
    if slow_blas:
        log.warning(slow_blas)
    return translator


def _write_heatmaps(
    translator: Translator,
    chunk: list[str],
    matrices: list[list],
    hypotheses: list[list[Hypothesis]],
    first_line: int,
    plot_dir: Path,
) -> None:
    """One PNG per non-empty line, for its best hypothesis."""
    from seq2seq.translation.alignment import plot_attention, plot_file_name, token_labels

    for index, (line, found, hyps) in enumerate(zip(chunk, matrices, hypotheses, strict=True)):
        if not found:
            continue  # an empty line: nothing was translated, nothing to attend to
        ids = translator.src_tokenizer.encode(clean_line(line))[: translator.max_source_tokens]
        plot_attention(
            found[0],
            token_labels(translator.src_tokenizer, ids),
            token_labels(translator.tgt_tokenizer, hyps[0].tokens),
            plot_dir / plot_file_name(first_line + index),
        )


def _text_line(translation: Translation, print_scores: bool, print_alignment: bool) -> str:
    """The hypotheses of one input line, tab-separated: [score] text [alignment] each."""
    fields = []
    for hyp in translation.nbest or [translation]:
        if print_scores:
            fields.append(f"{hyp.score:.4f}")
        fields.append(hyp.text)
        if print_alignment:
            from seq2seq.translation.alignment import format_alignment

            fields.append(format_alignment(hyp.alignment or []))
    return "\t".join(fields)


def _main(argv: list[str] | None = None) -> int:
    args, why_not = runtime_arguments(argv)
    use_runtime = args is not None
    if use_runtime:
        from seq2seq.runtime.search import STRATEGIES

        options = search_options(args, STRATEGIES)
    else:
        args = build_parser().parse_args(argv)
        if args.engine == "numpy":  # options only the full parser knows
            raise ValueError(f"--engine numpy cannot run this: {why_not}")
        # Inconsistent flags and an unknown strategy fail before the model loads.
        options = search_options(args)
    nbest = options.get("nbest", 1)
    with ExitStack() as stack:
        # Open the input first: a wrong path fails at once, before the output is created.
        source = stack.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        translator = load_runtime_translator(args) if use_runtime else load_translator(args)
        attention_flags = [
            flag
            for flag, given in (
                ("--plot-attention", args.plot_attention is not None),
                ("--print-alignment", args.print_alignment),
            )
            if given
        ]
        if attention_flags:
            from seq2seq.translation.alignment import require_attention

            # A fixed-vector checkpoint fails here: before any output or translation.
            require_attention(translator.model, "/".join(attention_flags))
        plot_dir = Path(args.plot_attention) if args.plot_attention is not None else None
        if plot_dir is not None:
            plot_dir.mkdir(parents=True, exist_ok=True)
        if args.output:
            sink = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="\n"))
        else:
            sink = utf8_stdout()
        lines = read_lines_safely(source, args.input or "<stdin>")
        # Typed at a terminal: answer each line as it comes rather than every chunk.
        chunk_lines = 1 if source.isatty() else args.chunk_lines
        first_line = 1  # 1-based number of the chunk's first input line (heatmap file names)
        while chunk := list(itertools.islice(lines, chunk_lines)):
            hyps = translator.hypotheses(
                chunk, search=args.search, batch_size=args.batch_size, **options
            )
            hyps = [h[:nbest] for h in hyps]
            alignments = None
            if attention_flags:
                from seq2seq.translation.alignment import hard_alignment

                matrices = translator.attention(chunk, hyps, args.batch_size)
                if plot_dir is not None:
                    _write_heatmaps(translator, chunk, matrices, hyps, first_line, plot_dir)
                if args.print_alignment:
                    alignments = [[hard_alignment(m) for m in found] for found in matrices]
            translations = translator.translations(hyps, alignments, nbest)
            if args.confidence:
                best = [h[0] for h in hyps]
                translations = translator.with_confidence(
                    translations, chunk, best, args.batch_size
                )
            for line, translation in zip(chunk, translations, strict=True):
                if args.format == "jsonl":
                    record = {"source": line, **translation.to_dict()}
                    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:  # detokenize() maps tabs and line breaks to spaces: one line per input
                    if args.confidence:
                        value = translation.confidence
                        flags = ",".join(translation.flags or [])
                        sink.write(f"{'' if value is None else f'{value:.4f}'}\t{flags}\t")
                    sink.write(_text_line(translation, args.print_scores, args.print_alignment))
                    sink.write("\n")
            sink.flush()
            first_line += len(chunk)
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
