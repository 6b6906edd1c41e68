"""`seq2seq-bleu`: sacreBLEU BLEU, chrF and TER of one or several systems.

    seq2seq-bleu --checkpoint RUN/checkpoints/averaged.pt --split test --search beam
    seq2seq-bleu --checkpoint CK --src test.en --ref test.de
    seq2seq-bleu --checkpoint CK --testset wmt13 --langpair en-es     # sacreBLEU's sets
    seq2seq-bleu --hyp out.de --ref test.de
    seq2seq-bleu --checkpoint A B C --split test --table results.md   # A is the baseline
    seq2seq-bleu --hyp A.txt B.txt C.txt --ref REF.txt --json

Several systems (several --checkpoint or --hyp values; `--ensemble` makes several
checkpoints one system) are each scored, then compared with the first by sacreBLEU's
paired bootstrap resampling and approximate randomisation (`--paired`).
"""

from __future__ import annotations

import argparse
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
    positive_int,
    run_cli,
    search_options,
)
from seq2seq.data.corpora import SPLITS
from seq2seq.data.reading import read_lines
from seq2seq.translation.metrics import corpus_scores

PAIRED = {"both": ("bs", "ar"), "bs": ("bs",), "ar": ("ar",), "none": ()}


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


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    systems = parser.add_argument_group("systems (several: the first is the baseline)")
    systems.add_argument("--hyp", nargs="+", metavar="FILE", help="existing translations")
    add_checkpoint_argument(
        systems,
        "Translate the test set with each, then score",
        required=False,
        several="one system each (or, with --ensemble, their ensemble)",
    )
    systems.add_argument(
        "--ensemble", action="store_true", help="the checkpoints are one ensemble system"
    )
    test = parser.add_argument_group("test set (one of)")
    test.add_argument(
        "--testset",
        help="a test set sacreBLEU knows (wmt13, iwslt17, …: `sacrebleu --list`), read from "
        "its cache ($SACREBLEU, else ~/.sacrebleu) or downloaded into it",
    )
    test.add_argument(
        "--langpair", help="with --testset: its language pair (default: the checkpoint's)"
    )
    test.add_argument("--src", help="source file to translate (with --ref)")
    test.add_argument(
        "--ref", action="append", help="reference file (repeat for several references)"
    )
    test.add_argument(
        "--split",
        default="test",
        help="without --testset/--src: this split of the checkpoint's corpus "
        f"({', '.join(SPLITS)})",
    )
    test.add_argument(
        "--data-root", help="with --split: corpus folder (default: the checkpoint's data.root)"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        help="with --checkpoint: also write the translations to this file (several systems: "
        "to this folder, one file per system, 1.txt, 2.txt, … in the order given)",
    )
    out.add_argument(
        "--json",
        action="store_true",
        help="print the record (what --record appends) as JSON instead of text",
    )
    out.add_argument(
        "--record",
        metavar="JSONL",
        help="append the record, one JSON line, to this file "
        "(RUN/results.jsonl: seq2seq-results shows it)",
    )
    out.add_argument("--table", metavar="MD", help="several systems: write the Markdown table here")
    sig = parser.add_argument_group("significance (several systems)")
    sig.add_argument(
        "--paired",
        default="both",
        choices=list(PAIRED),
        help="paired test(s) against the baseline: bootstrap resampling, approximate "
        "randomisation, both, or none",
    )
    sig.add_argument("--paired-bs-n", type=positive_int, default=1000, help="bootstrap resamples")
    sig.add_argument(
        "--paired-ar-n", type=positive_int, default=10000, help="approximate randomisation trials"
    )
    add_search_arguments(parser)


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Contradictory flags fail at once, before anything loads."""
    if bool(args.hyp) == bool(args.checkpoint):
        parser.error("give --hyp (score files) or --checkpoint (translate, then score)")
    if args.hyp and args.src:
        parser.error("--src is only used with --checkpoint")
    if args.hyp and not (args.ref or args.testset):
        parser.error("--hyp needs --ref or --testset")
    if args.testset and (args.src or args.ref):
        parser.error("give either --testset or --src/--ref, not both")
    if args.checkpoint and bool(args.src) != bool(args.ref):
        parser.error("--src and --ref go together (or give neither: --testset or --split)")
    if args.hyp and args.testset and not args.langpair:
        parser.error("--hyp with --testset needs --langpair (e.g. en-de)")
    if args.langpair and not args.testset:
        parser.error("--langpair goes with --testset")
    if args.ensemble and not args.checkpoint:
        parser.error("--ensemble combines checkpoints: give --checkpoint A B …")
    if args.checkpoint and not (args.src or args.testset):
        # every corpus names its splits alike: check before any model loads
        check_choice("--split", args.split, SPLITS, "split")
    if args.output and args.hyp:
        parser.error("-o writes the translations of --checkpoint; --hyp files are already written")


def _model_pair(config: dict[str, Any]) -> str:
    return f"{config['data']['src_lang']}-{config['data']['tgt_lang']}"


def _test_set(args: argparse.Namespace, config: dict[str, Any] | None):
    """(sources or None, reference streams, their names, the set's name)."""
    if args.testset:
        from seq2seq.data.testsets import load_test_set

        langpair = args.langpair or _model_pair(config)
        if config is not None and langpair != _model_pair(config):
            raise ValueError(
                f"--langpair {langpair}: the checkpoint translates {_model_pair(config)}"
            )
        found = load_test_set(args.testset, langpair)
        names = [f"the reference of {found.name}"] * len(found.refs)
        return found.src, found.refs, names, found.name
    if args.hyp:
        return None, [read_lines(r) for r in args.ref], args.ref, ", ".join(args.ref)
    src, ref, name = evaluation_set(
        config, args.src, (args.ref or [None])[0], args.split, args.data_root
    )
    refs = [ref] + [read_lines(r) for r in (args.ref or [])[1:]]
    return src, refs, args.ref or [f"the reference side of {name}"], name


def _translate_systems(args: argparse.Namespace) -> tuple[list[tuple[str, list[str]]], list, dict]:
    """Each checkpoint system's translations of the test set, loading one at a time."""
    options = search_options(args)  # inconsistent flags fail before any model loads
    groups = [args.checkpoint] if args.ensemble else [[c] for c in args.checkpoint]
    systems, refs, info = [], [], {}
    for group in groups:
        translator = load_translator(args, group)
        if not info:
            src, refs, ref_names, test_name = _test_set(args, translator.config)
            _check_aligned(src, args.src or test_name, refs, ref_names)
            pair = _model_pair(translator.config)
            info = {"test_set": test_name, "sentences": len(src), "pair": pair}
        elif _model_pair(translator.config) != info["pair"]:
            raise ValueError(
                f"{' '.join(group)} translates {_model_pair(translator.config)}, but the "
                f"first system translates {info['pair']}: compare systems of one language pair"
            )
        started = time.perf_counter()
        hyps = [
            t.text
            for t in translator.translate(
                src, search=args.search, batch_size=args.batch_size, **options
            )
        ]
        info.setdefault("translate_seconds", []).append(round(time.perf_counter() - started, 3))
        systems.append((" + ".join(group), hyps))
        del translator
    info["decoding"] = {"search": args.search, "batch_size": args.batch_size, **options}
    return systems, refs, info


def _write_outputs(path: Path, outputs: list[list[str]]) -> None:
    """One system: the file `path`; several: `path`/1.txt, 2.txt, … in the order given."""
    if len(outputs) == 1:
        path.write_text("".join(h + "\n" for h in outputs[0]), encoding="utf-8")
        return
    path.mkdir(parents=True, exist_ok=True)
    for number, hyps in enumerate(outputs, 1):
        (path / f"{number}.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")


def _single_record(args, hyps, refs, info) -> dict[str, Any]:
    record: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if args.hyp:
        record.update(hyp=args.hyp[0], ref=args.ref or info["test_set"])
    else:
        record.update(
            checkpoint=_checkpoint_names(args.checkpoint),
            test_set=info["test_set"],
            sentences=info["sentences"],
            translate_seconds=info["translate_seconds"][0],
            decoding=info["decoding"],
        )
    metrics = corpus_scores(hyps, refs)
    record["metrics"] = {
        name: {"score": r["score"], "signature": r["signature"]} for name, r in metrics.items()
    }
    if not args.json:
        for result in metrics.values():
            print(result["text"])
            print(f"  signature: {result['signature']}")
    return record


def _comparison_record(args, systems, refs, info) -> dict[str, Any]:
    from seq2seq.translation.significance import compare_systems, format_comparison

    tests = PAIRED[args.paired]
    if tests:
        record = compare_systems(systems, refs, tests, args.paired_bs_n, args.paired_ar_n)
    else:  # scores only
        scored, signatures = [], {}
        for name, hyps in systems:
            metrics = corpus_scores(hyps, refs)
            scored.append(
                {"system": name, "metrics": {m: {"score": r["score"]} for m, r in metrics.items()}}
            )
            signatures = {m: {"score": r["signature"]} for m, r in metrics.items()}
        record = {"baseline": systems[0][0], "tests": {}, "systems": scored}
        record["signatures"] = signatures
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "test_set": info["test_set"], **record}
    if not args.hyp:
        record["decoding"] = info["decoding"]
        for entry, seconds in zip(record["systems"], info["translate_seconds"], strict=True):
            entry["translate_seconds"] = seconds
    if not args.json:
        print(f"{info['test_set']}: {len(systems)} systems")
        print(format_comparison(record))
    if args.table:
        table = f"{info['test_set']}\n\n{format_comparison(record, markdown=True)}\n"
        Path(args.table).write_text(table, encoding="utf-8")
    return record


def _main(argv: list[str] | None = None) -> int:
    parser = command_parser("seq2seq-bleu", __doc__)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    _check_flags(parser, args)

    if args.hyp:
        _, refs, ref_names, test_name = _test_set(args, None)
        systems = [(h, read_lines(h)) for h in args.hyp]
        for name, hyps in systems:
            _check_aligned(hyps, name, refs, ref_names)
        info = {"test_set": test_name}
    else:
        systems, refs, info = _translate_systems(args)
        if args.output:
            _write_outputs(Path(args.output), [hyps for _, hyps in systems])

    if len(systems) == 1:
        record = _single_record(args, systems[0][1], refs, info)
    else:
        record = _comparison_record(args, systems, refs, info)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    if args.json:
        print(line, end="")
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        with open(args.record, "a", encoding="utf-8") as f:
            f.write(line)
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
