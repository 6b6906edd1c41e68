"""What vs_opennmt.py reads and prints: speeds and times from the toolkits' logs, and
the comparison table. Pure functions (no process, no torch), tested on log excerpts.
"""

from __future__ import annotations

import json
import re
import statistics

from vs_opennmt_recipe import LOG_EVERY, SEARCHES, SHORTLISTED, startup_run

OUR_LOOP = re.compile(r"\d+ batches per epoch \(\d+ updates\)")
OUR_END = re.compile(r"stopping: reached trainer\.max_steps=")
ONMT_LOOP = re.compile(r"Start training loop|Starting training on")
ONMT_STEP = re.compile(r"Step\s+(\d+)(?:/\s*\d+)?;.*?([\d.]+)/\s*([\d.]+) tok/s")
ROWS = [  # key, label, better: "higher"/"lower" (a ratio), "bleu" (a difference), None
    ("train_tgt_tok_s", "train: target tok/s (median after warm-up)", "higher"),
    ("train_total_s", "train: wall clock with start-up, s", "lower"),
    ("train_startup_s", "train: start-up, s", "lower"),
    ("train_loop_s", "train: wall clock without start-up, s", "lower"),
    ("train_teardown_s", "train: final validation + save, s", None),
    ("train_peak_rss_mib", "train: peak RSS, MiB", "lower"),
    ("translate_startup_s", "translate: start-up (one sentence), s", "lower"),
    *(
        row
        for search in SEARCHES
        for row in (
            *(
                [(f"{search}_startup_s", f"{search}: start-up (one sentence), s", "lower")]
                if SEARCHES[search] > 1
                else []
            ),
            (f"{search}_wall_s", f"{search}: wall clock with start-up, s", "lower"),
            (f"{search}_generation_s", f"{search}: without start-up, s", "lower"),
            (f"{search}_bleu", f"{search}: BLEU", "bleu"),
            (f"{search}_peak_rss_mib", f"{search}: peak RSS, MiB", "lower"),
        )
    ),
    *(
        row
        for name, search in ((n, n.removesuffix("_shortlist")) for n in SHORTLISTED)
        for row in (
            (f"{name}_wall_s", f"{search}: with start-up, seq2seq --shortlist, s", "lower"),
            (f"{name}_bleu", f"{search}: BLEU, seq2seq --shortlist", "bleu"),
        )
    ),
]


TRAIN_KEYS = ("tgt_tok_s", "total_s", "startup_s", "loop_s", "teardown_s", "peak_rss_mib")


def onmt_speeds(lines: list[str]) -> dict[int, float]:
    """Target tok/s of each OpenNMT-py report, by step: the second of "src/tgt tok/s"."""
    found = {}
    for line in lines:
        if match := ONMT_STEP.search(line):
            found[int(match.group(1))] = float(match.group(3))
    return found


def our_speeds(lines: list[str]) -> dict[int, float]:
    """tgt_tokens_per_s of each metrics.jsonl interval record, by step."""
    found = {}
    for line in lines:
        record = json.loads(line) if line.strip() else {}
        if "tgt_tokens_per_s" in record:
            found[int(record["step"])] = float(record["tgt_tokens_per_s"])
    return found


def steady_median(speeds: dict[int, float], warmup: int = LOG_EVERY) -> float | None:
    """The median speed of the intervals ending after `warmup` updates (None: none)."""
    steady = [value for step, value in speeds.items() if step > warmup]
    return statistics.median(steady) if steady else None


def loop_window(
    lines: list[tuple[float, str]], start: re.Pattern, end: re.Pattern
) -> tuple[float, float] | None:
    """(start, end) times of the training loop: the last `start` line before the first
    `end` line, and that line; None when either is missing."""
    end_at = next((i for i, (_, text) in enumerate(lines) if end.search(text)), None)
    if end_at is None:
        return None
    starts = [t for t, text in lines[:end_at] if start.search(text)]
    return (starts[-1], lines[end_at][0]) if starts else None


def advantage(ours: float | None, theirs: float | None, better: str | None) -> float | None:
    """seq2seq's advantage: ours/theirs where higher is better, theirs/ours where lower
    is, ours - theirs for BLEU; so >1 (BLEU: >0) favours seq2seq."""
    if better is None or ours is None or theirs is None:
        return None
    if better == "bleu":
        return round(ours - theirs, 2)
    if ours <= 0 or theirs <= 0:
        return None
    return round(ours / theirs if better == "higher" else theirs / ours, 3)


def their_value(theirs: dict, key: str) -> float | None:
    """OpenNMT-py's number for a row; it has no shortlist, so a seq2seq --shortlist row
    is set against its run of the same search."""
    return theirs.get(key.replace("_shortlist", ""))


def format_table(ours: dict, theirs: dict) -> str:
    """The comparison as a Markdown table, one row per measure."""
    lines = [
        "| measure | seq2seq | OpenNMT-py | advantage of seq2seq (>1: faster/smaller) |",
        "| --- | --- | --- | --- |",
    ]
    for key, label, better in ROWS:
        a, b = ours.get(key), their_value(theirs, key)
        edge = advantage(a, b, better)
        shown = "—" if edge is None else f"{edge:+.2f} BLEU" if better == "bleu" else f"{edge:.2f}×"
        lines.append(f"| {label} | {_number(a)} | {_number(b)} | {shown} |")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"


def measures(result: dict | None) -> dict[str, float]:
    """One toolkit's result as the table's measures (ROWS keys); {} when it did not run."""
    if not result:
        return {}
    train, translate = result["train"], result["translate"]
    row = {f"train_{key}": train[key] for key in TRAIN_KEYS}
    row["translate_startup_s"] = translate["first"]["wall_s"]
    for name in SEARCHES:
        for key in ("wall_s", "generation_s", "bleu", "peak_rss_mib"):
            row[f"{name}_{key}"] = translate[name][key]
        start = translate.get(startup_run(name))  # older reports timed greedy's alone
        row[f"{name}_startup_s"] = start["wall_s"] if start else None
    for name in SHORTLISTED:
        if name in translate:
            row[f"{name}_wall_s"] = translate[name]["wall_s"]
            row[f"{name}_bleu"] = translate[name]["bleu"]
    return row
