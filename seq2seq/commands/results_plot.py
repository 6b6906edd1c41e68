"""`seq2seq-results --plot out.png`: dev BLEU of each run against updates and against
wall time, from the evaluation records of its metrics.jsonl (step, dev_bleu, wall_s:
seconds of training when the evaluation ended, over resumes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def bleu_curve(records: list[dict[str, Any]]) -> list[tuple[int, float, float | None]]:
    """(step, dev BLEU, wall seconds or None) of each evaluation record, by step; the
    averaged checkpoint's score is not a point of the curve. A resumed run logs the steps
    after its last checkpoint again: the later record of a step wins."""
    points: dict[int, tuple[int, float, float | None]] = {}
    for record in records:
        step, bleu, wall = record.get("step"), record.get("dev_bleu"), record.get("wall_s")
        if "averaged" in record or not _is_number(step) or not _is_number(bleu):
            continue
        points[int(step)] = (int(step), float(bleu), float(wall) if _is_number(wall) else None)
    return [points[step] for step in sorted(points)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def plot_bleu(curves: dict[str, list[tuple[int, float, float | None]]], path: Path) -> Path:
    """Two panels, dev BLEU against updates and against wall time (minutes, or seconds
    for runs under two minutes), one line per run labelled by its name; written as PNG
    (matplotlib's Agg canvas: no display needed)."""
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    by_step, by_time = figure.subplots(1, 2, sharey=True)
    longest = max((p[2] or 0.0 for points in curves.values() for p in points), default=0.0)
    unit, seconds = ("minutes", 60) if longest >= 120 else ("seconds", 1)
    for name, points in curves.items():
        line = by_step.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
        timed = [p for p in points if p[2] is not None]
        if timed:
            by_time.plot(
                [p[2] / seconds for p in timed],
                [p[1] for p in timed],
                marker=".",
                color=line[0].get_color(),
                label=name,
            )
    by_step.set(xlabel="updates", ylabel="dev BLEU", title="dev BLEU by updates")
    by_time.set(xlabel=f"wall time ({unit})", title="dev BLEU by wall time")
    for axes in (by_step, by_time):
        axes.grid(alpha=0.3)
    by_step.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
