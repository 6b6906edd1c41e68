"""Each decoding option against the plain fp32 full-vocabulary path: speed, BLEU, and
how many lines come out identical.

The model is loaded once; every option translates the same test sentences greedily
and with beam 5, in rounds (option after option, then again), and the fastest round
counts, so that a busy moment on a shared machine does not decide. Generation only:
start-up is the same for every option.

    python benchmarks/decode_options.py --checkpoint runs/en_de/checkpoints/averaged.pt
    python benchmarks/decode_options.py --checkpoint CK --src test.en --ref test.de -o opts.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import sacrebleu
import torch
from eval_set import add_test_set_arguments, read_test_set

from seq2seq.hardware import cpu_description, tune_allocator
from seq2seq.translation.translator import Translator

# name → (shortlist, quantize, batch size); the first is the plain path the others replace
OPTIONS = {
    "full vocabulary, 64 a batch": (False, "none", 64),
    "full vocabulary, 128 a batch (default)": (False, "none", 128),
    "shortlist, 64 a batch": (True, "none", 64),
    "shortlist, 128 a batch": (True, "none", 128),
    "full vocabulary, int8, 128 a batch": (False, "int8", 128),
    "shortlist, int8, 128 a batch": (True, "int8", 128),
}
SEARCHES = {"greedy": {}, "beam 5": {"beam_size": 5}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model with a shortlist")
    add_test_set_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2, help="times each option runs")
    parser.add_argument("-o", "--output", help="also write the results here, as JSON")
    args = parser.parse_args(argv)
    tune_allocator()
    src, ref = read_test_set(args)
    plain = Translator.from_pretrained(args.checkpoint, precision="fp32")
    if plain.shortlist is None:
        parser.error(f"{args.checkpoint} has no shortlist (trained before shortlists existed)")
    variants = {}
    for name, (shortlist, quantize, _) in OPTIONS.items():
        translator = Translator.from_pretrained(args.checkpoint, precision="fp32")
        translator.use_shortlist = shortlist
        variants[name] = translator.quantize(quantize) if quantize != "none" else translator
    best: dict[tuple[str, str], float] = {}
    outputs: dict[tuple[str, str], list[str]] = {}
    for _ in range(args.rounds):
        for search, options in SEARCHES.items():
            for name, translator in variants.items():
                kind = "beam" if options else "greedy"
                batch = OPTIONS[name][2]
                translator.translate(src[:16], search=kind, batch_size=batch, **options)
                start = time.perf_counter()
                found = translator.translate(src, search=kind, batch_size=batch, **options)
                seconds = time.perf_counter() - start
                best[name, search] = min(seconds, best.get((name, search), float("inf")))
                outputs[name, search] = [t.text for t in found]
    baseline = next(iter(OPTIONS))
    rows = []
    for search in SEARCHES:
        for name in OPTIONS:
            text = outputs[name, search]
            same = sum(a == b for a, b in zip(text, outputs[baseline, search], strict=True))
            rows.append(
                {
                    "search": search,
                    "option": name,
                    "seconds": round(best[name, search], 2),
                    "speed_up": round(best[baseline, search] / best[name, search], 2),
                    "bleu": round(sacrebleu.corpus_bleu(text, [ref]).score, 2),
                    "identical": same,
                }
            )
    report = {
        "machine": {"cpu": cpu_description(), "torch": torch.__version__},
        "threads": torch.get_num_threads(),
        "checkpoint": str(args.checkpoint),
        "sentences": len(src),
        "rows": rows,
    }
    print(f"{report['machine']['cpu']}, torch {torch.__version__}, {len(src)} sentences")
    print("| search | option | seconds | speed-up | BLEU | identical lines |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['search']} | {r['option']} | {r['seconds']:.2f} | {r['speed_up']:.2f}× | "
            f"{r['bleu']:.2f} | {r['identical']:,} |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
