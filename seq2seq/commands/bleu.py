"""`seq2seq-bleu`: sacreBLEU BLEU, chrF and TER of existing output or of a checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from seq2seq.commands.common import (
    add_checkpoint_argument,
    add_search_arguments,
    check_choice,
    command_parser,
    evaluation_set,
    load_translator,
    run_cli,
    search_options,
)
from seq2seq.data.corpora import SPLITS
from seq2seq.data.reading import read_lines
from seq2seq.translation.metrics import corpus_scores


def _check_aligned(hyps: list[str], hyp_name: str, refs: list[list[str]], ref_names: list[str]):
    """Every reference must have one line per hypothesis; the error names both files."""
    if not hyps:
        raise ValueError(f"{hyp_name} is empty: nothing to score")
    for ref, ref_name in zip(refs, ref_names, strict=True):
        if len(ref) != len(hyps):
            raise ValueError(
                f"line counts differ: {hyp_name} has {len(hyps)} lines but {ref_name} has "
                f"{len(ref)}. Line N of the hypotheses must translate line N of the reference."
            )


def _checkpoint_names(paths: list[str]) -> str | list[str]:
    """One checkpoint is recorded as a string (as before), an ensemble as a list."""
    return str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]


def _main(argv: list[str] | None = None) -> int:
    parser = command_parser("seq2seq-bleu", __doc__)
    parser.add_argument("--hyp", help="existing translations to score")
    parser.add_argument(
        "--ref", action="append", help="reference file (repeat for several references)"
    )
    add_checkpoint_argument(parser, "Translate --src (or --split) with it, then score", False)
    parser.add_argument("--src", help="source file to translate")
    parser.add_argument(
        "--split",
        default="test",
        help=f"without --src/--ref: this split of the checkpoint's corpus ({', '.join(SPLITS)})",
    )
    parser.add_argument(
        "--data-root",
        help="without --src/--ref: corpus folder (default: the checkpoint's data.root)",
    )
    parser.add_argument(
        "-o", "--output", help="with --checkpoint: also write the translations here"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print this evaluation's record (what --record appends) as JSON instead of text",
    )
    parser.add_argument(
        "--record",
        metavar="JSONL",
        help="append this evaluation's record, one JSON line, to this file "
        "(RUN/results.jsonl: seq2seq-results shows it)",
    )
    add_search_arguments(parser)
    args = parser.parse_args(argv)

    record: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if args.hyp and args.checkpoint:
        parser.error("give either --hyp (score a file) or --checkpoint (translate, then score)")
    if args.hyp:
        if not args.ref:
            parser.error("--hyp needs --ref")
        if args.src:
            parser.error("--src is only used with --checkpoint")
        hyps = read_lines(args.hyp)
        refs = [read_lines(r) for r in args.ref]
        _check_aligned(hyps, args.hyp, refs, args.ref)
        record.update(hyp=args.hyp, ref=args.ref)
    elif args.checkpoint:
        if bool(args.src) != bool(args.ref):
            parser.error("--src and --ref go together (or give neither to use --split)")

        if not args.src:  # every corpus names its splits alike: check before the model loads
            check_choice("--split", args.split, SPLITS, "split")
        options = search_options(args)  # inconsistent flags fail before the model loads
        translator = load_translator(args)
        src, ref, name = evaluation_set(
            translator.config, args.src, (args.ref or [None])[0], args.split, args.data_root
        )
        refs = [ref] + [read_lines(r) for r in (args.ref or [])[1:]]
        ref_names = args.ref or [f"the reference side of {name}"]
        _check_aligned(src, args.src or name, refs, ref_names)
        started = time.perf_counter()
        hyps = [
            t.text
            for t in translator.translate(
                src, search=args.search, batch_size=args.batch_size, **options
            )
        ]
        seconds = time.perf_counter() - started
        record.update(
            checkpoint=_checkpoint_names(args.checkpoint),
            test_set=name,
            sentences=len(src),
            translate_seconds=round(seconds, 3),
            decoding={"search": args.search, "batch_size": args.batch_size, **options},
        )
        if args.output:
            Path(args.output).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    else:
        parser.error("give --hyp and --ref, or --checkpoint (with --src and --ref, or a --split)")

    metrics = corpus_scores(hyps, refs)
    record["metrics"] = {
        name: {"score": r["score"], "signature": r["signature"]} for name, r in metrics.items()
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    if args.json:
        print(line, end="")
    else:
        for result in metrics.values():
            print(result["text"])
            print(f"  signature: {result['signature']}")
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        with open(args.record, "a", encoding="utf-8") as f:
            f.write(line)
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
