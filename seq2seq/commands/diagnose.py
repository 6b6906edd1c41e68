"""Diagnostics for recurrent training: gradient flow through time, and gradient clipping.

    python -m seq2seq.diagnose gradients [KEY=VALUE ...]
    python -m seq2seq.diagnose clipping RUN_DIR [RUN_DIR ...]

`gradients` unrolls each cell setting for T steps over random inputs, puts a loss
on the last hidden state only (L = <w, h_T> with a fixed random w) and measures
‖∂L/∂h_t‖ for t = 1..T by backpropagation through time. Vanishing gradients show
as a ratio r = ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ far below 1, exploding ones far above 1. It is
driven by the Hydra config `conf/diagnose/gradients.yaml` (any key can be
overridden, e.g. `steps=100 hidden_size=128 out_dir=plots`); `cells` lists cell
settings (any registered cell, plugins included) and `inits` the initialisations;
every pair is measured. It writes `<out_dir>/<name>.csv` and a log-scale
`<out_dir>/<name>.png`.

`clipping` reads a character-LM run's metrics.jsonl and reports how often gradient
clipping fired (the global gradient norm exceeded `trainer.clip_norm`).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from seq2seq import registry
from seq2seq.commands.parsing import command_parser
from seq2seq.nn.gradient_flow import Setting, gradient_flow

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _settings(cfg: Any) -> list[Setting]:
    settings = []
    for cell in cfg.cells:
        for init in cfg.inits:
            settings.append(
                Setting(
                    cell=str(cell["cell"]),
                    cell_options=dict(cell.get("cell_options") or {}),
                    init=str(init.get("init", "default")),
                    init_std=float(init.get("std", 1.0) or 1.0),
                )
            )
    return settings


def run_gradients(cfg: Any) -> list[dict[str, Any]]:
    """Measure every (cell, init) pair of the config; write the CSV and the plot."""
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {cfg.dtype!r}")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    for setting in _settings(cfg):
        norms = gradient_flow(
            setting.cell,
            setting.cell_options,
            setting.init,
            setting.init_std,
            steps=cfg.steps,
            input_size=cfg.input_size,
            hidden_size=cfg.hidden_size,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            dtype=DTYPES[cfg.dtype],
        )
        last = float(norms[-1])
        ratios = [float(n) / last if last > 0 else math.nan for n in norms]
        results.append({"setting": setting, "norms": norms.tolist(), "ratios": ratios})
        for t, (n, r) in enumerate(zip(norms.tolist(), ratios, strict=True), start=1):
            rows.append(
                {
                    "cell": setting.cell,
                    "cell_options": json.dumps(setting.cell_options, sort_keys=True),
                    "label": setting.cell_label,
                    "init": setting.init,
                    "init_std": setting.init_std if setting.init == "gaussian" else "",
                    "t": t,
                    "grad_norm": n,
                    "ratio_to_T": r,
                }
            )
        print(
            f"{setting.cell_label:<24} {setting.init_label:<20} "
            f"r = |dL/dh_1| / |dL/dh_T| = {ratios[0]:.3e}",
            flush=True,
        )
    csv_path = out_dir / f"{cfg.name}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    png_path = out_dir / f"{cfg.name}.png"
    plot(results, cfg, png_path)
    print(f"wrote {csv_path} and {png_path}")
    return results


def plot(results: list[dict[str, Any]], cfg: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inits: list[str] = []
    for r in results:
        if r["setting"].init_label not in inits:
            inits.append(r["setting"].init_label)
    cols = min(2, len(inits))
    rows = math.ceil(len(inits) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.4 * cols, 4.4 * rows), squeeze=False, sharex=True, sharey=True
    )
    finite = [v for r in results for v in r["ratios"] if math.isfinite(v) and v > 0]
    lo = max(min(finite, default=1e-300), 1e-300)
    hi = max(finite, default=1.0)
    for ax, init in zip(axes.flat, inits, strict=False):
        for r in results:
            if r["setting"].init_label != init:
                continue
            steps = list(range(1, len(r["ratios"]) + 1))
            values = [v if math.isfinite(v) and v > 0 else math.nan for v in r["ratios"]]
            label = f"{r['setting'].cell_label} (r={r['ratios'][0]:.0e})"
            ax.plot(steps, values, label=label, linewidth=1.6)
        ax.set_yscale("log")
        ax.set_ylim(lo / 10, hi * 10)
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"init: {init}")
        ax.set_xlabel("time step t (loss at t = T)")
        ax.set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for ax in list(axes.flat)[len(inits) :]:
        ax.axis("off")
    fig.suptitle(
        f"Gradient flow through time: T={cfg.steps}, hidden {cfg.hidden_size}, "
        f"input {cfg.input_size}, batch {cfg.batch_size}, random N(0,1) inputs"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compose_gradients_config(overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        return compose(config_name="diagnose/gradients", overrides=list(overrides))


# ------------------------------------------------------------------ clipping
def clipping_report(run_dir: str | Path) -> dict[str, Any]:
    """How often clipping fired in a training run (translation or LM), from its metrics.jsonl."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl" if run_dir.is_dir() else run_dir
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics.jsonl (is this a training run directory?)")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    totals = [r for r in records if "clip_events_total" in r]
    if not totals:
        raise ValueError(
            f"{path} has no gradient-clipping counts; runs record them every "
            "trainer.log_every steps"
        )
    last = totals[-1]
    windows = [r for r in records if "clip_fraction" in r]
    updates = int(last["updates_total"])
    events = int(last["clip_events_total"])
    return {
        "run": str(run_dir),
        "clip_norm": last.get("clip_norm"),
        "updates": updates,
        "clip_events": events,
        "fraction": events / updates if updates else 0.0,
        "windows": [(r["step"], r["clip_fraction"]) for r in windows],
    }


def _print_clipping(report: dict[str, Any]) -> None:
    norm = report["clip_norm"]
    print(
        f"{report['run']}: gradient clipping"
        + (f" (norm > {norm:g})" if norm else "")
        + f" fired in {report['clip_events']} of {report['updates']} updates "
        f"({100 * report['fraction']:.1f}%)"
    )
    windows = report["windows"]
    if windows:
        shown = windows if len(windows) <= 12 else windows[:6] + windows[-6:]
        print("  step  share of updates clipped (per logging window)")
        for step, frac in shown:
            print(f"  {step:>6}  {100 * frac:5.1f}%")
        if len(windows) > 12:
            print(f"  ({len(windows) - 12} windows not shown)")


# ----------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = command_parser(
        "python -m seq2seq.diagnose",
        "Diagnostics: gradient flow through time per cell; gradient clipping.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    grad = sub.add_parser(
        "gradients",
        help="‖∂L/∂h_t‖ for t=1..T per cell and initialisation; writes a CSV and a PNG",
        description="Config: seq2seq/conf/diagnose/gradients.yaml; override with KEY=VALUE, "
        'e.g. steps=100 out_dir=plots "cells=[{cell: indrnn}]" "inits=[{init: default}]"',
    )
    grad.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides")
    clip = sub.add_parser("clipping", help="how often gradient clipping fired in a run")
    clip.add_argument(
        "runs", nargs="+", metavar="RUN", help="run directories (or metrics.jsonl files)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "gradients":
            run_gradients(compose_gradients_config(args.overrides))
        else:
            for run in args.runs:
                _print_clipping(clipping_report(run))
    except (registry.PluginError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Hydra override errors
        if type(exc).__module__.startswith(("hydra", "omegaconf")):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
