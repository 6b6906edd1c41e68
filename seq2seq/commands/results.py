"""`seq2seq-results`: one table comparing the training runs found under some folders.

    seq2seq-results multirun/2026-11-25/21-00-00          # a Hydra sweep
    seq2seq-results runs/ --sort best_dev_bleu            # best first
    seq2seq-results runs/ multirun/ --json > runs.json    # a list of records
    seq2seq-results runs/ --plot bleu.png                 # and dev BLEU curves

A run directory is a folder holding `config.yaml` beside `summary.json`,
`metrics.jsonl`, `checkpoints/` or `.hydra/` (what `python -m seq2seq.train` writes).
Each run is one row, read from the `summary.json` the trainer writes when it ends
(however it ends, an error included):

- run: its folder, relative to the folder(s) given;
- overrides: the command-line overrides that tell it apart. For the jobs of a Hydra
  sweep (`-m`, its `multirun.yaml` beside them) these are the swept ones
  (`model.cell=gru`); otherwise the overrides in `.hydra/overrides.yaml` that differ
  from those of the other runs in the same folder (all of them for a lone run);
- updates: the optimizer updates applied;
- best dev BLEU (greedy, on the dev sentences the trainer scores) and the step of it;
  the averaged checkpoint's dev BLEU; the final dev loss and perplexity; the median
  training speed of the log intervals;
- wall: seconds of training, over every resume;
- stop: why training stopped, or the error it stopped with;
- test BLEU/chrF: the last record of a `results.jsonl` in the run folder, as
  written by `seq2seq-bleu --record RUN/results.jsonl`.

A run without `summary.json` is still training, or was killed: its row says so and
shows the last step of its `metrics.jsonl`. Unreadable lines of a metrics file (a
kill mid-write leaves a truncated last line) are skipped with a warning naming the
file and line. Columns that are empty for every run are left out of the table (never
out of `--json`).

`--plot out.png` also draws each run's dev BLEU against updates and against wall time
(seq2seq.commands.results_plot), from the evaluation records of its metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seq2seq.commands.parsing import command_parser

SUMMARY = "summary.json"  # written by seq2seq.training.summary
RUN_MARKERS = (SUMMARY, "metrics.jsonl", "checkpoints", ".hydra")
SKIP_DIRS = {"checkpoints", "tokenizer", "__pycache__"}
NO_SUMMARY = "no summary.json: still training, or killed"

# Sort keys: higher is better for these (sorted descending), lower for the others.
DESCENDING = {
    "updates",
    "best_dev_bleu",
    "dev_bleu",
    "averaged_dev_bleu",
    "tgt_tokens_per_s",
    "test_bleu",
    "test_chrf",
}
SORT_KEYS = (
    "run",
    "overrides",
    "updates",
    "best_dev_bleu",
    "best_step",
    "averaged_dev_bleu",
    "dev_loss",
    "dev_ppl",
    "tgt_tokens_per_s",
    "wall_s",
    "test_bleu",
    "test_chrf",
    "best_valid_bpc",
)

# (header, record key, formatter, numeric)
COLUMNS: list[tuple[str, str, Any, bool]] = [
    ("run", "run", str, False),
    ("overrides", "overrides_shown", str, False),
    ("updates", "updates", lambda v: f"{v:,}", True),
    ("best dev BLEU", "best_dev_bleu", lambda v: f"{v:.2f}", True),
    ("at step", "best_step", lambda v: f"{v:,}", True),
    ("averaged dev BLEU", "averaged_dev_bleu", lambda v: f"{v:.2f}", True),
    ("dev loss", "dev_loss", lambda v: f"{v:.3f}", True),
    ("dev ppl", "dev_ppl", lambda v: f"{v:.2f}", True),
    ("best valid bpc", "best_valid_bpc", lambda v: f"{v:.4f}", True),
    ("tgt tok/s", "tgt_tokens_per_s", lambda v: f"{v:,.0f}", True),
    ("wall", "wall_s", lambda v: _duration(v), True),
    ("stop", "stop_reason", lambda v: _clip(v, 60), False),
    ("test BLEU", "test_bleu", lambda v: f"{v:.2f}", True),
    ("test chrF", "test_chrf", lambda v: f"{v:.2f}", True),
    ("test search", "test_search", str, False),
]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _natural_key(text: str) -> list[Any]:
    """'run/2' before 'run/10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# ------------------------------------------------------------------ finding runs
def is_run_dir(path: Path) -> bool:
    return (
        path.name != ".hydra"
        and (path / "config.yaml").is_file()
        and any((path / marker).exists() for marker in RUN_MARKERS)
    )


def find_runs(root: Path) -> Iterator[Path]:
    """Run directories at or under root; a run's own subfolders are not searched."""
    if is_run_dir(root):
        yield root
        return
    for current, dirs, _files in os.walk(root):
        here = Path(current)
        keep = []
        for name in sorted(dirs, key=_natural_key):
            if name.startswith(".") or name in SKIP_DIRS:
                continue
            if is_run_dir(here / name):
                yield here / name
            else:
                keep.append(name)
        dirs[:] = keep


# ------------------------------------------------------------------ reading a run
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON object lines of path; unreadable lines are skipped with a warning."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.strip())
            except json.JSONDecodeError as exc:
                text = line.strip()[:60]
                warn(f"{path}:{number}: skipped an unreadable line ({exc.msg}): {text}")
                continue
            if not isinstance(record, dict):
                warn(f"{path}:{number}: skipped a line that is not a JSON object")
                continue
            records.append(record)
    return records


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _best(summary: dict[str, Any], metric: str) -> dict[str, Any]:
    best = (summary.get("best") or {}).get(metric)
    return best if isinstance(best, dict) else {}


def row_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The table's fields from a run's summary.json."""
    final = summary.get("final") or {}
    bleu = _best(summary, "dev_bleu")
    return {
        "updates": summary.get("updates"),
        "best_dev_bleu": _number(bleu.get("value")),
        "best_step": bleu.get("step"),
        "averaged_dev_bleu": _number((summary.get("averaged") or {}).get("dev_bleu")),
        "dev_bleu": _number(final.get("dev_bleu")),
        "dev_loss": _number(final.get("dev_loss")),
        "dev_ppl": _number(final.get("dev_ppl")),
        "best_valid_bpc": _number(_best(summary, "valid_bpc").get("value")),
        "tgt_tokens_per_s": _number(summary.get("tgt_tokens_per_s")),
        "wall_s": _number(summary.get("wall_s")),
        "stop_reason": summary.get("stop_reason"),
        "config_sha256": summary.get("config_sha256"),
    }


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warn(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
        return None
    if not isinstance(summary, dict):
        warn(f"cannot read {path}: not a JSON object")
        return None
    return summary


def last_step(metrics_path: Path) -> int | None:
    """The last step logged in metrics.jsonl, for a run that has not ended."""
    steps = [r["step"] for r in read_jsonl(metrics_path) if _number(r.get("step")) is not None]
    return int(max(steps)) if steps else None


def read_overrides(run: Path) -> list[str]:
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        warn(f"cannot read {path}: {exc}")
        return []
    return [str(item) for item in data] if isinstance(data, list) else []


def read_test_scores(run: Path) -> dict[str, Any]:
    """The last record of RUN/results.jsonl (seq2seq-bleu --record): BLEU, chrF, decoding."""
    path = run / "results.jsonl"
    if not path.is_file():
        return {}
    records = [r for r in read_jsonl(path) if isinstance(r.get("metrics"), dict)]
    if not records:
        return {}
    record = records[-1]
    metrics = record["metrics"]
    out: dict[str, Any] = {}
    for key, prefix in (("test_bleu", "BLEU"), ("test_chrf", "chrF")):
        name = next((n for n in metrics if n.startswith(prefix)), None)
        if name and isinstance(metrics[name], dict):
            out[key] = _number(metrics[name].get("score"))
    decoding = record.get("decoding") or {}
    search = decoding.get("search")
    if search == "beam" and decoding.get("beam_size"):
        search = f"beam{decoding['beam_size']}"
    out["test_search"] = search
    out["test_set"] = record.get("test_set") or record.get("ref")
    return out


def read_run(run: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"path": str(run), "overrides": read_overrides(run)}
    summary = read_summary(run / SUMMARY) if (run / SUMMARY).is_file() else None
    if summary is not None:
        record.update(row_from_summary(summary))
    else:
        record["stop_reason"] = NO_SUMMARY
        if (run / "metrics.jsonl").is_file():
            try:
                record["updates"] = last_step(run / "metrics.jsonl")
            except OSError as exc:
                warn(f"cannot read {run / 'metrics.jsonl'}: {exc.strerror or exc}")
    record.update(read_test_scores(run))
    return record


# ------------------------------------------------------------------ overrides shown
def _override_key(text: str) -> str:
    return text.split("=", 1)[0].lstrip("+~")


def swept_keys(sweep_dir: Path) -> set[str]:
    """Keys of the sweep overrides (`a=1,2`, `range(...)`) in a multirun.yaml."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return set()
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        task = data["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        warn(f"cannot read the sweep overrides of {path}: {exc}")
        return set()
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(overrides=[str(t) for t in task])
        return {o.key_or_group for o in parsed if o.is_sweep_override()}
    except Exception:  # noqa: BLE001 - an unparsable line: fall back to differing values
        return set()


def shown_overrides(records: list[dict[str, Any]]) -> None:
    """Set record['overrides_shown']: what tells each run apart from its neighbours."""
    groups: dict[Path, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(Path(record["path"]).parent, []).append(record)
    for parent, group in groups.items():
        keys = swept_keys(parent)
        for record in group:
            if keys:
                chosen = [o for o in record["overrides"] if _override_key(o) in keys]
            elif len(group) > 1:
                common = set.intersection(*(set(r["overrides"]) for r in group))
                chosen = [o for o in record["overrides"] if o not in common]
            else:
                chosen = record["overrides"]
            record["overrides_shown"] = " ".join(chosen)


# ------------------------------------------------------------------ output
def format_table(records: list[dict[str, Any]]) -> str:
    """An aligned table that is also a Markdown table; all-empty columns left out."""
    always = ("run", "overrides_shown")
    columns = [c for c in COLUMNS if c[1] in always or any(_filled(r, c) for r in records)]
    rows = [[header for header, *_ in columns]]
    for record in records:
        row = []
        for _header, key, fmt, _numeric in columns:
            value = record.get(key)
            row.append("" if value is None or value == "" else fmt(value))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(width) if column[3] and n else cell.ljust(width)
            for cell, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            rule = [
                "-" * (width - 1) + ":" if column[3] else "-" * width
                for width, column in zip(widths, columns, strict=True)
            ]
            lines.append("| " + " | ".join(rule) + " |")
    return "\n".join(lines)


def _filled(record: dict[str, Any], column: tuple[str, str, Any, bool]) -> bool:
    value = record.get(column[1])
    return value is not None and value != ""


def sort_records(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """By `key`, best first for scores and speeds; runs without a value last."""
    if key == "run":
        return sorted(records, key=lambda r: _natural_key(r["run"]))
    if key == "overrides":
        return sorted(records, key=lambda r: (r.get("overrides_shown", ""), _natural_key(r["run"])))
    present = [r for r in records if r.get(key) is not None]
    missing = [r for r in records if r.get(key) is None]
    present.sort(key=lambda r: r[key], reverse=key in DESCENDING)
    return present + missing


def _display_names(runs: list[Path], roots: list[Path]) -> list[str]:
    """Each run relative to the folders given (their common parent when several)."""
    bases = [root.parent if is_run_dir(root) else root for root in roots]
    base = Path(os.path.commonpath([str(b) for b in bases]))
    return [os.path.relpath(run, base) for run in runs]


def collect(dirs: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of every run under dirs (found, read, overrides chosen), and missing dirs."""
    roots, missing = [], []
    for name in dirs:
        path = Path(name).expanduser()
        if path.is_dir():
            roots.append(path.resolve())
        else:
            missing.append(name)
    runs: list[Path] = []
    for root in roots:
        for run in find_runs(root):
            if run not in runs:
                runs.append(run)
    records = []
    for run, name in zip(runs, _display_names(runs, roots) if runs else [], strict=True):
        record = {"run": name, **read_run(run)}
        records.append(record)
    shown_overrides(records)
    return records, missing


def plot_runs(records: list[dict[str, Any]], path: str) -> bool:
    """--plot: the dev BLEU curves of the runs (in table order) to `path`; False, with
    an error printed, when no run has a dev BLEU to draw or the file cannot be written."""
    from seq2seq.commands.results_plot import bleu_curve, plot_bleu  # imports matplotlib

    curves = {}
    for record in records:
        metrics = Path(record["path"]) / "metrics.jsonl"
        try:
            points = bleu_curve(read_jsonl(metrics)) if metrics.is_file() else []
        except OSError as exc:
            warn(f"cannot read {metrics}: {exc.strerror or exc}")
            points = []
        if points:
            curves[record["run"]] = points
        else:
            warn(f"{record['run']}: no dev BLEU in its metrics.jsonl; left out of the plot")
    if not curves:
        print(
            "error: --plot: none of the runs has a dev BLEU evaluation in its metrics.jsonl "
            "(translation runs log one every trainer.eval_every updates)",
            file=sys.stderr,
        )
        return False
    try:
        plot_bleu(curves, Path(path).expanduser())
    except OSError as exc:
        print(f"error: --plot: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    print(f"plot of {len(curves)} run(s): {path}", file=sys.stderr)
    return True


def _main(argv: list[str] | None = None) -> int:
    parser = command_parser(
        "seq2seq-results",
        "Compare the training runs under some folders: one table, one row per run.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run, sweep or output folder")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of records instead of the table"
    )
    parser.add_argument(
        "--sort",
        default="run",
        choices=SORT_KEYS,
        metavar="KEY",
        help=f"order of the rows: one of {', '.join(SORT_KEYS)}. Scores and speeds sort "
        "best first, losses and wall-clock lowest first",
    )
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="also write a PNG of dev BLEU against updates and against wall time, one line "
        "per run (from each run's metrics.jsonl)",
    )
    args = parser.parse_args(argv)
    records, missing = collect(args.dirs)
    for name in missing:
        warn(f"{name}: no such folder")
    if not records:
        print(
            "error: no training runs (folders with config.yaml and summary.json or metrics.jsonl) "
            "found under " + ", ".join(args.dirs),
            file=sys.stderr,
        )
        return 2
    records = sort_records(records, args.sort)
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        print(format_table(records))
    if args.plot and not plot_runs(records, args.plot):
        return 2
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        sys.exit(_main(argv))
    except BrokenPipeError:  # `seq2seq-results runs | head`
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(141)


if __name__ == "__main__":
    main()
