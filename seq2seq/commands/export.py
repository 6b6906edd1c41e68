"""`seq2seq-export RUN_OR_CHECKPOINT -o DIR`: a self-contained model folder to share.

The folder holds the weights as safetensors, config.json, the tokenizer files and a
model card (README.md) with the test-set scores measured here, each with its
sacreBLEU signature. Every command that takes --checkpoint reads the folder, and so
do `seq2seq.Translator.from_pretrained(DIR)` and the Hugging Face Hub (`push_to_hub`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq.commands.common import (
    add_search_arguments,
    check_choice,
    command_parser,
    evaluation_set,
    load_translator,
    run_cli,
    search_options,
)
from seq2seq.data.corpora import SPLITS
from seq2seq.nn.ensemble import Ensemble
from seq2seq.translation.metrics import corpus_scores
from seq2seq.translation.model_folder import CONFIG_NAME, WEIGHTS_NAME, int8_round_trip


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-export", __doc__)
    parser.add_argument(
        "checkpoint",
        metavar="RUN_OR_CHECKPOINT",
        help="a run folder (its checkpoints/best.pt), a checkpoint file, or a model folder",
    )
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into DIR even if it already holds files (the model's files are replaced)",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="score the model on this split of its training corpus for the model card",
    )
    parser.add_argument("--src", help="score on this source file instead of --split")
    parser.add_argument("--ref", help="the reference translations of --src")
    parser.add_argument(
        "--data-root", help="corpus folder (default: the one the model was trained from)"
    )
    parser.add_argument(
        "--no-scores", action="store_true", help="do not translate the split: a card without scores"
    )
    add_search_arguments(
        parser,
        quantize_help="int8: store each weight matrix as int8 with a float32 scale per row, "
        "a quarter of the size; the folder translates with the stored weights, and the "
        "card's scores are measured with them",
    )
    return parser


def _search_name(search: str, options: dict) -> str:
    shown = {k: v for k, v in options.items() if k not in ("max_length", "max_length_ratio")}
    return search + "".join(f" {k}={v}" for k, v in sorted(shown.items()))


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = search_options(args)
    out = Path(args.output)
    if bool(args.src) != bool(args.ref):
        raise ValueError("--src and --ref go together (or give neither to score on --split)")
    if not args.src:  # every corpus names its splits alike: check before the model loads
        check_choice("--split", args.split, SPLITS, "split")
    if out.is_file():
        raise ValueError(f"-o {out}: is a file; give a folder to create")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ValueError(
            f"-o {out}: the folder already holds files; choose a new folder, or add --force "
            f"to replace the model's files in it ({WEIGHTS_NAME}, {CONFIG_NAME}, tokenizer/, "
            "README.md)"
        )
    args.checkpoint = [args.checkpoint]
    weights = "int8" if args.quantize == "int8" else "fp32"
    args.quantize = "none"  # here it says how the folder stores the weights, not how to decode
    translator = load_translator(args)
    if isinstance(translator.model, Ensemble):  # pragma: no cover - one path is taken
        raise ValueError("export takes one model")
    if weights == "int8":
        int8_round_trip(translator.model)
    if not args.no_scores:
        src, ref, name = evaluation_set(
            translator.config, args.src, args.ref, args.split, args.data_root
        )
        hyps = [
            t.text
            for t in translator.translate(
                src, search=args.search, batch_size=args.batch_size, **options
            )
        ]
        metrics = corpus_scores(hyps, [ref])
        translator.metadata["scores"] = [
            {
                "test_set": name,
                "sentences": len(src),
                "search": _search_name(args.search, options),
                **{
                    k: {"score": v["score"], "signature": v["signature"]}
                    for k, v in metrics.items()
                },
            }
        ]
        for result in metrics.values():
            print(result["text"])
    translator.save_pretrained(out, weights)
    size = (out / WEIGHTS_NAME).stat().st_size / 2**20
    print(
        f"wrote {out}: {WEIGHTS_NAME} ({weights}, {size:.1f} MiB), {CONFIG_NAME}, "
        "tokenizer/, README.md"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
