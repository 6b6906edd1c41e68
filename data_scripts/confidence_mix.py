#!/usr/bin/env python
"""How the confidence value separates text a model knows from text it does not.

    python data_scripts/confidence_mix.py --checkpoint runs/en_es --lines 300

It builds one file mixing in-domain sentences (the model's own test split) with
out-of-domain ones (for en_es: WMT newstest2012 news and the Europarl sample), in turn,
translates it with `confidence=True` (what `seq2seq-translate --confidence` prints),
and reports, per origin, the mean confidence, how often each flag fires, and BLEU/chrF.
`-o DIR` keeps the mixed file and the JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path


def sets(translator, data: Path, lines: int) -> dict[str, tuple[list[str], list[str]]]:
    """origin -> (sources, references): the model's test split and out-of-domain text."""
    from seq2seq.commands.common import evaluation_set
    from seq2seq.data.reading import read_lines

    src, ref, name = evaluation_set(translator.config, None, None, "test", str(data))
    found = {f"in-domain ({name})": (src[:lines], ref[:lines])}
    pair = (translator.config["data"]["src_lang"], translator.config["data"]["tgt_lang"])
    if pair == ("en", "es"):
        for origin, stem in (
            ("news (newstest2012)", "newstest2012.dev"),
            ("parliament (Europarl)", "europarl-v7-sample20k-tok.all"),
        ):
            found[origin] = tuple(
                read_lines(data / "en_es" / f"{stem}.{lang}.gz")[:lines] for lang in pair
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint, run or model folder")
    parser.add_argument("--lines", type=int, default=300, help="sentences from each origin")
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("SEQ2SEQ_DATA", "data"))
    )
    parser.add_argument("--search", default="beam", choices=["greedy", "beam"])
    parser.add_argument("-o", "--output", type=Path, help="folder for the mixed file and results")
    args = parser.parse_args(argv)

    from seq2seq import Translator
    from seq2seq.translation.metrics import corpus_scores

    translator = Translator.from_pretrained(args.checkpoint)
    found = sets(translator, args.data_root, args.lines)
    # one mixed file, origins in turn, as a user's input would come
    mixed = [
        (origin, s, r)
        for i in range(args.lines)
        for origin, (src, ref) in found.items()
        if i < len(src)
        for s, r in [(src[i], ref[i])]
    ]
    options = {"beam_size": 5} if args.search == "beam" else {}
    results = translator.translate(
        [s for _, s, _ in mixed], search=args.search, confidence=True, **options
    )
    report = {}
    for origin in found:
        rows = [(m, t) for m, t in zip(mixed, results, strict=True) if m[0] == origin]
        values = [t.confidence for _, t in rows if t.confidence is not None]
        flags = [f for _, t in rows for f in t.flags]
        scores = corpus_scores([t.text for _, t in rows], [[m[2] for m, _ in rows]])
        report[origin] = {
            "lines": len(rows),
            "mean_confidence": round(statistics.mean(values), 4),
            "median_confidence": round(statistics.median(values), 4),
            "unknown_source": flags.count("unknown_source"),
            "long_source": flags.count("long_source"),
            "BLEU": scores["BLEU"]["score"],
            "chrF2": scores["chrF2"]["score"],
        }
    print(f"{len(mixed)} lines, {args.search} search, {args.checkpoint}")
    columns = (
        "origin | lines | mean confidence | median | long_source | unknown_source | BLEU | chrF2"
    )
    print(f"| {columns} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for origin, r in report.items():
        print(
            f"| {origin} | {r['lines']} | {r['mean_confidence']:.3f} | "
            f"{r['median_confidence']:.3f} | {r['long_source']} | {r['unknown_source']} | "
            f"{r['BLEU']:.2f} | {r['chrF2']:.2f} |"
        )
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "mixed.src").write_text(
            "".join(s + "\n" for _, s, _ in mixed), encoding="utf-8"
        )
        with open(args.output / "mixed.jsonl", "w", encoding="utf-8") as f:
            for (origin, source, _), t in zip(mixed, results, strict=True):
                f.write(
                    json.dumps(
                        {"origin": origin, "source": source, **t.to_dict()}, ensure_ascii=False
                    )
                    + "\n"
                )
        (args.output / "report.json").write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
