"""`seq2seq-results`: one table comparing the training runs found under some folders.

    seq2seq-results multirun/2026-11-25/21-00-00          # a Hydra sweep
    seq2seq-results runs/ --sort best_dev_bleu            # best first
    seq2seq-results runs/ multirun/ --json > runs.json    # a list of records

A run directory is a folder holding `config.yaml` beside `metrics.jsonl`, `train.log`,
`checkpoints/` or `.hydra/` (what `python -m seq2seq.train` writes). Each run is one
row:

- run: its folder, relative to the folder(s) given;
- overrides: the command-line overrides that tell it apart. For the jobs of a Hydra
  sweep (`-m`, its `multirun.yaml` beside them) these are the swept ones
  (`model.cell=gru`); otherwise the overrides in `.hydra/overrides.yaml` that differ
  from those of the other runs in the same folder (all of them for a lone run);
- updates: the last step in `metrics.jsonl`;
- best dev BLEU (greedy, on the dev sentences the trainer scores) and the step of it;
  the last dev loss and perplexity; the median of the training tgt tokens/s windows;
- stop: why training stopped (from `train.log`), or the error it stopped with;
- wall: from the start of the job (its config files are written first) to the last
  write of its metrics or log;
- test BLEU/chrF: the last record of a `results.jsonl` in the run folder, as
  written by `seq2seq-bleu --json RUN/results.jsonl`.

Unreadable lines of a metrics file (a run killed mid-write leaves a truncated last
line) are skipped with a warning naming the file and line. Columns that are empty for
every run are left out of the table (never out of `--json`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

RUN_MARKERS = ("metrics.jsonl", "train.log", "checkpoints", ".hydra")
SKIP_DIRS = {"checkpoints", "tokenizer", "__pycache__"}
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,(\d+))?\]")
LOG_STOP = re.compile(r"\] - stopping: (.*)$")
LOG_ERROR = re.compile(r"\]\[ERROR\] - (.*)$")

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


def summarize_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """updates, best/last dev scores and speed from the records of one metrics.jsonl."""
    out: dict[str, Any] = {}
    steps = [int(r["step"]) for r in records if _number(r.get("step")) is not None]
    out["updates"] = max(steps) if steps else None
    scored = [r for r in records if _number(r.get("dev_bleu")) is not None]
    evals = [r for r in scored if "averaged" not in r]
    averaged = [r for r in scored if "averaged" in r]  # trainer.average_last's checkpoint
    if averaged:
        out["averaged_dev_bleu"] = float(averaged[-1]["dev_bleu"])
    if evals:
        best = max(evals, key=lambda r: r["dev_bleu"])  # the first of equal scores
        out["best_dev_bleu"] = float(best["dev_bleu"])
        out["best_step"] = best.get("step")
        last = evals[-1]
        out["dev_bleu"] = float(last["dev_bleu"])
        out["dev_loss"] = _number(last.get("dev_loss"))
        out["dev_ppl"] = _number(last.get("dev_ppl"))
    bpcs = [r["valid_bpc"] for r in records if _number(r.get("valid_bpc")) is not None]
    if bpcs:  # a character language model (task=lm)
        out["best_valid_bpc"] = min(bpcs)
    speeds = [r["tgt_tokens_per_s"] for r in records if _number(r.get("tgt_tokens_per_s"))]
    if speeds:
        out["tgt_tokens_per_s"] = statistics.median(speeds)
    reasons = [r["stop_reason"] for r in records if isinstance(r.get("stop_reason"), str)]
    if reasons:
        out["stop_reason"] = reasons[-1]
    return out


def _log_file(run: Path) -> Path | None:
    if (run / "train.log").is_file():
        return run / "train.log"
    logs = sorted(run.glob("*.log"))
    return logs[0] if logs else None


def read_log(path: Path) -> dict[str, Any]:
    """Stop reason (or the error logged last) and first/last timestamps of a Hydra job log."""
    out: dict[str, Any] = {}
    first = last = None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        warn(f"cannot read {path}: {exc.strerror or exc}")
        return out
    for line in lines:
        stamp = LOG_TIME.match(line)
        if stamp:
            try:
                when = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            when = when.replace(microsecond=int((stamp.group(2) or "0")[:3].ljust(3, "0")) * 1000)
            first = first or when
            last = when
        if match := LOG_STOP.search(line):
            out["stop_reason"] = match.group(1).strip()
        elif match := LOG_ERROR.search(line):
            out["stop_reason"] = "error: " + match.group(1).strip()
    if first and last and last > first:
        out["log_seconds"] = (last - first).total_seconds()
    return out


def wall_seconds(run: Path, log_seconds: float | None) -> float | None:
    """Job start (Hydra writes .hydra/config.yaml first, train() then config.yaml) to the
    last write of metrics.jsonl or the log; the log's own time span if mtimes disagree."""
    config_files = _files(run / ".hydra" / "config.yaml", run / "config.yaml")
    starts = [p.stat().st_mtime for p in config_files]
    ends = [p.stat().st_mtime for p in _files(run / "metrics.jsonl", _log_file(run))]
    if starts and ends and max(ends) >= min(starts):
        return max(ends) - min(starts)
    return log_seconds


def _files(*paths: Path | None) -> list[Path]:
    return [p for p in paths if p is not None and p.is_file()]


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
    """The last record of RUN/results.jsonl (seq2seq-bleu --json): BLEU, chrF, decoding."""
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
    metrics_path = run / "metrics.jsonl"
    if metrics_path.is_file():
        try:
            record.update(summarize_metrics(read_jsonl(metrics_path)))
        except OSError as exc:
            warn(f"cannot read {metrics_path}: {exc.strerror or exc}")
    else:
        warn(f"{run}: no metrics.jsonl (nothing logged yet, or the run failed early)")
    log_path = _log_file(run)
    log_info = read_log(log_path) if log_path else {}
    if "stop_reason" not in record and "stop_reason" in log_info:
        record["stop_reason"] = log_info["stop_reason"]
    try:
        record["wall_s"] = wall_seconds(run, log_info.get("log_seconds"))
    except OSError:
        record["wall_s"] = log_info.get("log_seconds")
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


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-results",
        description="Compare the training runs under some folders: one table, one row per run.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run, sweep or output folder")
    parser.add_argument("--json", action="store_true", help="print a JSON list of records")
    parser.add_argument(
        "--sort",
        default="run",
        choices=SORT_KEYS,
        metavar="KEY",
        help=f"order of the rows: one of {', '.join(SORT_KEYS)} (default: run). Scores "
        "and speeds sort best first, losses and wall-clock lowest first",
    )
    args = parser.parse_args(argv)
    records, missing = collect(args.dirs)
    for name in missing:
        warn(f"{name}: no such folder")
    if not records:
        print(
            "error: no training runs (folders with config.yaml and metrics.jsonl) found under "
            + ", ".join(args.dirs),
            file=sys.stderr,
        )
        return 2
    records = sort_records(records, args.sort)
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        print(format_table(records))
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
