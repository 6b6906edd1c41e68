"""Where a training update's time goes: data, encoder, decoder steps, output layer and
loss, optimizer; each part's forward and backward timed on its own.

The update is cut at the encoder's output and the decoder's features: each cut tensor is
detached (so each part's forward and backward run, and are timed, by themselves), and the
gradients are handed back across the cuts in turn. The weights get exactly the
gradients of the plain update. The same updates are also timed the plain way (the
trainer's own update) so that the cost of the cuts shows.

    python benchmarks/train_profile.py                       # +exp=en_de_ref, 60 updates
    python benchmarks/train_profile.py --updates 100 -o profile.json -- model.hidden_size=512
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from seq2seq.data.reading import CorpusError
from seq2seq.hardware import autocast, cpu_description, tune_allocator
from seq2seq.nn.encoder import EncoderOutput
from seq2seq.nn.output_loss import output_layer_loss
from seq2seq.training.trainer import Trainer

PARTS = ("data", "encoder", "decoder steps", "output layer + loss", "optimizer")


def _clock(timings: dict[str, float], part: str, start: float) -> float:
    now = time.perf_counter()
    timings[part] = timings.get(part, 0.0) + now - start
    return now


def cut_update(trainer: Trainer, batches) -> dict[str, float]:
    """One update, timed part by part (forward and backward apart)."""
    model, optimizer, t = trainer.model, trainer.optimizer, trainer.tcfg
    timings: dict[str, float] = {}
    start = time.perf_counter()
    batch = next(batches)
    start = _clock(timings, "data", start)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast(trainer.device, trainer.precision):  # as the trainer's forward runs
        enc = model.encode(batch.src, batch.src_lengths)
        start = _clock(timings, "encoder forward", start)
        cut_enc = EncoderOutput(
            enc.states.detach().requires_grad_(),
            enc.mask,
            enc.summary.detach().requires_grad_(),
            enc.lengths,
        )
        emb = model.embedding_dropout(model.tgt_embedding(batch.tgt_in))
        features = model.decoder(emb, cut_enc, model.decoder.init_state(cut_enc))
        start = _clock(timings, "decoder steps forward", start)
        cut_features = features.detach().requires_grad_()
        loss = output_layer_loss(cut_features, model.output_layer, batch.tgt_out, t.label_smoothing)
        loss = loss / batch.num_tokens
    start = _clock(timings, "output layer + loss forward", start)
    loss.backward()
    start = _clock(timings, "output layer + loss backward", start)
    features.backward(cut_features.grad)
    start = _clock(timings, "decoder steps backward", start)
    torch.autograd.backward([enc.states, enc.summary], [cut_enc.states.grad, cut_enc.summary.grad])
    start = _clock(timings, "encoder backward", start)
    torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_norm or float("inf"))
    optimizer.step()
    _clock(timings, "optimizer", start)
    timings["tokens"] = float(batch.num_tokens)
    return timings


def plain_update(trainer: Trainer, batches, step: int) -> dict[str, float]:
    start = time.perf_counter()
    batch = next(batches)
    trainer.updater([batch], step, lambda: 0.0)
    return {"total": time.perf_counter() - start, "tokens": float(batch.num_tokens)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", default="en_de_ref", help="the recipe (+exp=...)")
    parser.add_argument("--updates", type=int, default=60, help="timed updates of each kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed updates first")
    parser.add_argument("-o", "--output", help="write the results as JSON here too")
    parser.add_argument("overrides", nargs="*", help="config overrides (after --)")
    args = parser.parse_args(argv)
    tune_allocator()  # as every seq2seq command does
    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[f"+exp={args.exp}", "trainer.loggers=[]", *args.overrides],
        )
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        trainer.setup()
        batches = trainer.epoch_source(0)
        for step in range(args.warmup):
            plain_update(trainer, batches, step)
        cut = [cut_update(trainer, batches) for _ in range(args.updates)]
        plain = [plain_update(trainer, batches, step) for step in range(args.updates)]
    report = summarise(cut, plain)
    report["machine"] = {
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": trainer.precision,
    }
    report["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print(table(report))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def summarise(cut: list[dict[str, float]], plain: list[dict[str, float]]) -> dict:
    """Seconds per update of each part (median: robust to a busy moment), its share of
    the cut update, tok/s."""
    keys = [k for k in cut[0] if k != "tokens"]
    seconds = {k: statistics.median(c[k] for c in cut) for k in keys}
    total = sum(seconds.values())
    parts = {}
    for part in PARTS:
        found = {k: v for k, v in seconds.items() if k.startswith(part)}
        parts[part] = {
            "ms": 1000 * sum(found.values()),
            "share": sum(found.values()) / total,
            **{k.removeprefix(part).strip() or "all": 1000 * v for k, v in found.items()},
        }
    tokens = statistics.fmean(c["tokens"] for c in cut)
    plain_s = statistics.median(p["total"] for p in plain)
    return {
        "parts": parts,
        "cut_update_ms": 1000 * total,
        "plain_update_ms": 1000 * plain_s,
        "tgt_tokens_per_update": tokens,
        "plain_tgt_tok_s": statistics.median(p["tokens"] / p["total"] for p in plain),
    }


def table(report: dict) -> str:
    lines = [
        f"{report['machine']['cpu']}, torch {report['machine']['torch']}, "
        f"{report['machine']['threads']} threads, {report['machine']['precision']}",
        "",
        "| part | ms per update | share | forward ms | backward ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for part, found in report["parts"].items():
        fwd, bwd = found.get("forward"), found.get("backward")
        lines.append(
            f"| {part} | {found['ms']:.1f} | {100 * found['share']:.1f}% | "
            f"{'' if fwd is None else f'{fwd:.1f}'} | {'' if bwd is None else f'{bwd:.1f}'} |"
        )
    lines += [
        "",
        f"cut update {report['cut_update_ms']:.1f} ms, plain update "
        f"{report['plain_update_ms']:.1f} ms ({report['plain_tgt_tok_s']:,.0f} target tok/s, "
        f"{report['tgt_tokens_per_update']:.0f} target tokens per update)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (CorpusError, ValueError) as exc:  # missing corpus, bad override: one line
        raise SystemExit(f"train_profile: {exc}") from None
