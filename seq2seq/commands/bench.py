"""`python -m seq2seq.bench +exp=en_de_ref` — how fast a recipe trains and translates here.

Each variant runs in its own process (so peak memory and process-wide settings are
its own): the recipe on the fast path, and with `--plain` again on the plain
per-step path (cells unrolled step by step, batches not bucketed by length, the
default allocator and optimizer, decoding one sentence at a time). Training is
timed on the real training batches after a warm-up, with the trainer's own update;
translation on the test set with the translate code path. The machine's fp32 (and
bf16) matrix-multiply peak is measured first, so achieved GFLOP/s has a yardstick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seq2seq.commands.common import command_parser, positive_int
from seq2seq.hardware import PRECISIONS, bf16_unsupported_reason

PLAIN_OVERRIDES = [
    "model.fused=false",
    "trainer.fused_optimizer=false",
    "trainer.length_buckets=false",
]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings include it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    dtype: torch.dtype = torch.float32,
    size: int = 2048,
    repeats: int = 5,
    device: torch.device | str = "cpu",
) -> float:
    """Best GFLOP/s of a size³ matrix product on `device` (CPU: in this process's threads)."""
    device = torch.device(device)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _training_batches(trainer, count: int) -> list:
    from seq2seq.data.batching import make_batch

    batches = []
    for indices in trainer.epoch_batches(0)[:count]:
        batches.append(
            make_batch(
                [trainer.data.train.src_ids[i] for i in indices],
                [trainer.data.train.tgt_ids[i] for i in indices],
            )
        )
    return batches


def _flops_per_update(trainer, batch) -> float:
    """Floating-point operations of one forward + backward (counted by torch)."""
    from torch.utils.flop_counter import FlopCounterMode

    from seq2seq.nn.output_loss import token_loss

    model, device = trainer.model, trainer.device
    counter = FlopCounterMode(display=False)
    with counter:
        logits = model(batch.src.to(device), batch.src_lengths, batch.tgt_in.to(device))
        token_loss(logits, batch.tgt_out.to(device)).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def measure_training(trainer, warmup: int, steps: int) -> dict[str, Any]:
    batches = _training_batches(trainer, warmup + steps)
    if len(batches) < warmup + steps:
        raise ValueError(f"the training set has only {len(batches)} batches per epoch")
    flops = [_flops_per_update(trainer, b) for b in batches[warmup : warmup + 3]]
    flops_per_token = sum(flops) / sum(b.num_tokens for b in batches[warmup : warmup + 3])
    trainer.model.train()
    for batch in batches[:warmup]:
        trainer._train_step([batch])
    tgt = src = 0
    synchronize(trainer.device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        trainer._train_step([batch])
        tgt += batch.num_tokens
        src += int(batch.src_lengths.sum())
    synchronize(trainer.device)
    seconds = time.perf_counter() - start
    return {
        "updates": steps,
        "seconds": seconds,
        "tgt_tokens_per_s": tgt / seconds,
        "src_tgt_tokens_per_s": (src + tgt) / seconds,
        "sentences_per_update": sum(b.size for b in batches[warmup:]) / steps,
        "gflops_per_s": flops_per_token * tgt / seconds / 1e9,
        "padding_fraction": trainer.padding_fraction(),
    }


def measure_translation(
    translator, lines: list[str], batch_size: int, beam_size: int
) -> dict[str, Any]:
    results = {}
    for name, search, options in (
        ("greedy", "greedy", {}),
        (f"beam{beam_size}", "beam", {"beam_size": beam_size}),
    ):
        translator.hypotheses(lines[:8], search=search, batch_size=batch_size, **options)
        start = time.perf_counter()
        hyps = translator.hypotheses(lines, search=search, batch_size=batch_size, **options)
        seconds = time.perf_counter() - start
        results[name] = {
            "sentences": len(lines),
            "seconds": seconds,
            "sentences_per_s": len(lines) / seconds,
            "output_tokens": sum(len(h[0].tokens) for h in hyps),
            "outputs_sha256": outputs_digest([h[0].tokens for h in hyps]),
        }
    return results


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """One variant, in this process: train-step timing, then translation timing."""
    from seq2seq.hardware import tune_allocator
    from seq2seq.nn.recurrent import set_fused
    from seq2seq.training.trainer import Trainer
    from seq2seq.translation.translator import Translator

    if not args.plain:
        tune_allocator()
    overrides = [*args.overrides, *(PLAIN_OVERRIDES if args.plain else [])]
    overrides.append(f"trainer.precision={args.precision}")  # the config's default is auto
    cfg = _compose(overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        trainer.setup()
        training = measure_training(trainer, args.warmup, args.steps)
        if args.checkpoint:
            translator = Translator.from_checkpoints([args.checkpoint], str(trainer.device))
            set_fused(translator.model, not args.plain)
        else:
            translator = Translator(
                trainer.model.eval(), trainer.data.src_tokenizer, trainer.data.tgt_tokenizer
            )
        translator.precision = args.precision
        lines = _test_lines(cfg, args.sentences)
        translation = measure_translation(
            translator, lines, 1 if args.plain else args.batch_size, args.beam_size
        )
    return {
        "variant": "plain" if args.plain else "fast",
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "training": training,
        "translation": translation,
        "peak_rss_mib": peak_rss_mib(),
        "device": str(trainer.device),
        **(
            {"peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}
            if trainer.device.type == "cuda"
            else {}
        ),
    }


def _test_lines(cfg, limit: int) -> list[str]:
    from seq2seq.data.pipeline import load_splits

    return load_splits(cfg.data)["test"].src[:limit]


def _worker_command(args: argparse.Namespace, plain: bool, precision: str) -> list[str]:
    command = [sys.executable, "-m", "seq2seq.bench", "--worker", "--precision", precision]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--sentences", str(args.sentences), "--beam-size", str(args.beam_size)]
    command += ["--batch-size", str(args.batch_size)]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    if plain:
        command.append("--plain")
    return command + args.overrides


def _run_worker(command: list[str]) -> dict[str, Any]:
    """One variant's results; whatever the worker prints goes to stderr (stdout is the
    report's)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "SEQ2SEQ_BENCH_OUT": out.name}
        subprocess.run(command, check=True, env=env, stdout=2)  # fd 2: our stderr
        return json.loads(Path(out.name).read_text(encoding="utf-8"))


def table(report: dict[str, Any]) -> str:
    peak = report["machine"]["fp32_matmul_gflops"]
    rows = [
        "| variant | precision | train tgt tok/s | train src+tgt tok/s | GFLOP/s (% of fp32 "
        "peak) | greedy s / sent/s | beam s / sent/s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        t, tr = run["training"], run["translation"]
        beam = next(v for k, v in tr.items() if k.startswith("beam"))
        rows.append(
            f"| {run['variant']} | {run['precision']} | {t['tgt_tokens_per_s']:,.0f} | "
            f"{t['src_tgt_tokens_per_s']:,.0f} | {t['gflops_per_s']:.1f} "
            f"({100 * t['gflops_per_s'] / peak:.0f}%) | {tr['greedy']['seconds']:.2f} / "
            f"{tr['greedy']['sentences_per_s']:.0f} | {beam['seconds']:.2f} / "
            f"{beam['sentences_per_s']:.0f} | {run['peak_rss_mib']:,.0f} |"
        )
    rows.append("")
    if report.get("ratios"):
        rows.append("speed ratios (above 1: the first named is faster):")
    for name, value in report.get("ratios", {}).items():
        rows.append(f"{name}: {value:.2f}×")
    if report.get("equal_outputs_fast_vs_plain") is not None:
        rows.append(
            "identical translations of every sentence, fast vs plain: "
            f"{report['equal_outputs_fast_vs_plain']}"
        )
    return "\n".join(rows)


def _ratios(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each run's speed as a multiple of fast-fp32's: above 1, that run is the faster.
    The key names the run first ("fast-bf16 speed / fast-fp32 speed: training")."""
    fast = next((r for r in runs if r["variant"] == "fast" and r["precision"] == "fp32"), None)
    ratios = {}
    for run in runs:
        if fast is None or run is fast:
            continue
        name = f"{run['variant']}-{run['precision']} speed / fast-fp32 speed"
        train = run["training"]["tgt_tokens_per_s"] / fast["training"]["tgt_tokens_per_s"]
        beam = next(k for k in fast["translation"] if k.startswith("beam"))
        decode = fast["translation"][beam]["seconds"] / run["translation"][beam]["seconds"]
        greedy = fast["translation"]["greedy"]["seconds"] / run["translation"]["greedy"]["seconds"]
        ratios[f"{name}: training"] = train
        ratios[f"{name}: greedy"] = greedy
        ratios[f"{name}: {beam}"] = decode
    return ratios


def outputs_digest(outputs: list[list[int]]) -> str:
    """sha256 of every output sentence's token ids, in order: equal digests, equal outputs."""
    digest = hashlib.sha256()
    for tokens in outputs:
        digest.update((" ".join(map(str, tokens)) + "\n").encode("ascii"))
    return digest.hexdigest()


def _equal_outputs(runs: list[dict[str, Any]]) -> bool | None:
    """Whether the fast and plain paths translated every sentence identically
    (meaningful with --checkpoint: both then decode the same weights)."""
    by_variant = {r["variant"]: r for r in runs if r["precision"] == "fp32"}
    if len(by_variant) < 2:
        return None
    fast, plain = by_variant["fast"]["translation"], by_variant["plain"]["translation"]
    return all(fast[k]["outputs_sha256"] == plain[k]["outputs_sha256"] for k in fast)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m seq2seq.bench", __doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +exp=en_de_ref")
    parser.add_argument("--steps", type=int, default=40, help="timed training updates")
    parser.add_argument("--warmup", type=int, default=5, help="untimed updates first")
    parser.add_argument("--sentences", type=int, default=1000, help="test sentences translated")
    parser.add_argument(
        "--beam-size", type=positive_int, default=5, help="beam of the timed beam search"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="sentences per decode batch"
    )
    parser.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="a trained checkpoint to time translation with (else the model "
        "after the timed updates, which is barely trained)",
    )
    parser.add_argument("--plain", action="store_true", help="also run the plain path")
    parser.add_argument(
        "--precision",
        action="append",
        choices=[p for p in PRECISIONS if p != "auto"],
        help="a precision to time the fast path at; repeatable (default: fp32)",
    )
    parser.add_argument("-o", "--output", help="also write the report here, as JSON")
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of the table"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.precision = args.precision or ["fp32"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        args.precision = args.precision[0]
        result = run_variant(args)
        Path(os.environ["SEQ2SEQ_BENCH_OUT"]).write_text(json.dumps(result), encoding="utf-8")
        return
    from seq2seq.training.run import resolve_device

    device = resolve_device(_compose(args.overrides).trainer.device)  # trainer.device=cuda
    gpu = device.type == "cuda"
    report: dict[str, Any] = {
        "command": "python -m seq2seq.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "device": torch.cuda.get_device_name(device) if gpu else "cpu",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "fp32_matmul_gflops": matmul_peak(torch.float32, device=device),
            "bf16_matmul_gflops": matmul_peak(
                torch.bfloat16, size=4096 if gpu else 1024, repeats=5 if gpu else 2, device=device
            ),
        },
        "runs": [],
    }
    variants = [(False, p) for p in args.precision] + ([(True, "fp32")] if args.plain else [])
    text = sys.stderr if args.json else sys.stdout  # with --json, stdout holds the JSON only
    for plain, precision in variants:
        reason = bf16_unsupported_reason(device) if precision == "bf16" else None
        if precision == "fp16" and not gpu:
            reason = "fp16 needs a CUDA GPU"
        if reason:
            report.setdefault("skipped", {})[precision] = reason
            print(f"{precision} skipped: {reason}", file=text)
            continue
        report["runs"].append(_run_worker(_worker_command(args, plain, precision)))
    report["ratios"] = _ratios(report["runs"])
    if args.checkpoint:
        report["equal_outputs_fast_vs_plain"] = _equal_outputs(report["runs"])
    as_json = json.dumps(report, indent=2) + "\n"
    if args.json:
        sys.stdout.write(as_json)
    else:
        print(
            f"fp32 matmul peak {report['machine']['fp32_matmul_gflops']:.1f} GFLOP/s, "
            f"bf16 {report['machine']['bf16_matmul_gflops']:.1f} GFLOP/s "
            f"({report['machine']['cpu_capability']}, {report['machine']['threads']} threads)"
        )
        print(table(report))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(as_json, encoding="utf-8")


if __name__ == "__main__":
    main()
