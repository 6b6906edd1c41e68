"""`seq2seq-translate`: one output line per input line, always, in order, streamed.

With --print-alignment each translation is followed, on its line, by a tab and its
hard alignment; with --plot-attention DIR, every non-empty input line N also gets
an attention heatmap DIR/<N, zero-padded to 6 digits>.png (e.g. DIR/000001.png).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from contextlib import ExitStack
from pathlib import Path

from seq2seq.commands.common import (
    add_search_arguments,
    command_parser,
    load_translator,
    positive_int,
    read_lines_safely,
    run_cli,
    search_options,
    utf8_stdout,
)
from seq2seq.hardware import autocast
from seq2seq.search import Hypothesis
from seq2seq.translation.translator import Translator, clean_line


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-translate", __doc__)
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
    add_search_arguments(parser)  # last: strategy options never shadow the flags above
    return parser


def _attention_outputs(
    translator: Translator,
    chunk: list[str],
    results: list[list[Hypothesis]],
    *,
    first_line: int,
    nbest: int,
    batch_size: int,
    plot_dir: Path | None,
    print_alignment: bool,
) -> list[list[str]]:
    """Write the chunk's heatmaps; return each line's alignment text per printed hypothesis."""
    from seq2seq.translation.alignment import (
        attention_matrices,
        format_alignment,
        hard_alignment,
        plot_attention,
        plot_file_name,
        token_labels,
    )

    keys: list[tuple[int, int]] = []  # (line in chunk, hypothesis rank)
    sources: list[list[int]] = []
    targets: list[list[int]] = []
    encoded: dict[int, list[int]] = {}
    for index, (line, hyps) in enumerate(zip(chunk, results, strict=True)):
        # The source exactly as Translator.translate encodes it (cleaned, truncated).
        ids = translator.src_tokenizer.encode(clean_line(line))[: translator.max_source_tokens]
        if not ids:
            continue  # an empty line: nothing was translated, nothing to attend to
        encoded[index] = ids
        for rank, hyp in enumerate(hyps[: nbest if print_alignment else 1]):
            keys.append((index, rank))
            sources.append(ids)
            targets.append(hyp.tokens)
    device = next(translator.model.parameters()).device
    with autocast(device, translator.precision):  # the precision the search ran in
        matrices = attention_matrices(
            translator.model,
            sources,
            targets,
            batch_size=batch_size,
            flag="--plot-attention" if plot_dir is not None else "--print-alignment",
        )
    texts: list[list[str]] = [[] for _ in chunk]
    for (index, rank), target, matrix in zip(keys, targets, matrices, strict=True):
        if print_alignment:
            texts[index].append(format_alignment(hard_alignment(matrix)))
        if plot_dir is not None and rank == 0:
            plot_attention(
                matrix,
                token_labels(translator.src_tokenizer, encoded[index]),
                token_labels(translator.tgt_tokenizer, target),
                plot_dir / plot_file_name(first_line + index),
            )
    return texts


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Inconsistent flags and an unknown strategy fail before the model loads.
    options = search_options(args)
    nbest = options.get("nbest", 1)
    with ExitStack() as stack:
        # Open the input first: a wrong path fails at once, before the output is created.
        source = stack.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        translator = load_translator(args)
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
            results = translator.translate(
                chunk, search=args.search, batch_size=args.batch_size, **options
            )
            alignments = None
            if attention_flags:
                alignments = _attention_outputs(
                    translator,
                    chunk,
                    results,
                    first_line=first_line,
                    nbest=nbest,
                    batch_size=args.batch_size,
                    plot_dir=plot_dir,
                    print_alignment=args.print_alignment,
                )
            for index, hyps in enumerate(results):
                # detokenize() maps tabs and line breaks to spaces: one line per input line.
                fields = []
                for rank, hyp in enumerate(hyps[:nbest]):
                    fields.append(translator.detokenize(hyp))
                    if args.print_alignment:
                        found = alignments[index]
                        fields.append(found[rank] if rank < len(found) else "")
                sink.write("\t".join(fields) + "\n")
            sink.flush()
            first_line += len(chunk)
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
