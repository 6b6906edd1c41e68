"""Where a training run stands (saved in every checkpoint, so a resume continues
exactly), and what it reports as it goes: metrics.jsonl records and a progress bar (or
plain progress lines where stderr is not a terminal)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm


@dataclass
class RunProgress:
    """What every trainer counts. One *step* is one attempted optimizer update."""

    step: int = 0
    epoch: int = 0
    best_score: float | None = None  # of the early-stopping metric
    best: dict[str, Any] = field(default_factory=dict)  # metric -> {"value", "step"}
    evals_without_improvement: int = 0
    bad_steps: int = 0  # NaN/Inf updates in a row
    skipped_steps: int = 0
    last_eval_step: int = -1
    updates: int = 0  # updates applied (finite loss and gradient)
    clip_events: int = 0  # updates whose gradient norm exceeded trainer.clip_norm
    wall_s: float = 0.0  # training seconds before this process (earlier runs of a resume)


@dataclass
class LogInterval:
    """Training statistics since the last log line."""

    amount: int = 0  # target tokens (translation) or characters (LM) trained on
    loss: float = 0.0
    updates: int = 0
    clips: int = 0
    start: float = field(default_factory=time.monotonic)

    def add(self, loss: float, amount: int, clipped: bool = False) -> None:
        self.loss += loss
        self.updates += 1
        self.amount += amount
        self.clips += int(clipped)

    def per_second(self) -> float:
        return self.amount / max(time.monotonic() - self.start, 1e-9)


class MetricsLog:
    """metrics.jsonl: one JSON record a line, appended (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict[str, Any]) -> None:
        """Raises OSError when the file cannot be written."""
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


PLAIN_LINE_SECONDS = 30.0  # between progress lines when stderr is not a terminal
TIME_BAR = (  # a tqdm bar in minutes of trainer.max_time
    "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min [{elapsed}<{remaining}{postfix}]"
)


@dataclass
class Meter:
    """What progress is counted in: updates (of max_steps, or of max_epochs' worth when
    known), or, for a run bounded by trainer.max_time alone, minutes of that budget."""

    unit: str  # "step" or "min"
    total: float | None
    elapsed: Callable[[], float]  # seconds of the time budget spent (Budget.elapsed)

    @classmethod
    def of(cls, tcfg: Any, steps_per_epoch: int | None, elapsed: Callable[[], float]) -> Meter:
        """steps_per_epoch None: unknown (streamed data), so no total unless a budget."""
        if tcfg.max_time and not tcfg.max_steps:
            return cls("min", float(tcfg.max_time), elapsed)
        per_epoch = tcfg.max_epochs * steps_per_epoch if steps_per_epoch else None
        return cls("step", tcfg.max_steps or per_epoch, elapsed)

    def position(self, step: int) -> float:
        if self.unit == "step":
            return step
        return min(self.elapsed() / 60, self.total or math.inf)


class ProgressBar:
    """A tqdm bar in the meter's unit; with minutes, the step is shown beside it."""

    def __init__(self, meter: Meter, step: int, desc: str, enabled: bool) -> None:
        self.meter = meter
        minutes = meter.unit == "min"
        self.bar = tqdm(
            total=meter.total,
            initial=meter.position(step),
            desc=desc,
            unit=meter.unit,
            dynamic_ncols=True,
            mininterval=1.0,
            disable=not enabled,
            bar_format=TIME_BAR if minutes else None,
        )
        self.step, self.postfix = step, {}

    def advance(self, step: int) -> None:
        """Move to `step` (and, in minutes, to the time spent)."""
        self.step = step
        if self.meter.unit == "min":
            self.bar.set_postfix({"step": step, **self.postfix}, refresh=False)
        self.bar.update(self.meter.position(step) - self.bar.n)

    def set_postfix(self, postfix: dict[str, str]) -> None:
        self.postfix = postfix
        extra = {"step": self.step} if self.meter.unit == "min" else {}
        self.bar.set_postfix({**extra, **postfix})

    def close(self) -> None:
        self.bar.close()


class PlainLines:
    """Progress as a plain line every PLAIN_LINE_SECONDS (time, not steps: a log file
    gets the same few lines an hour however fast training is), and one at the end,
    for a log file or CI, where tqdm's redrawn frames would pile up."""

    def __init__(
        self,
        meter: Meter,
        step: int,
        desc: str,
        enabled: bool,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = PLAIN_LINE_SECONDS,
    ) -> None:
        self.meter, self.desc, self.enabled = meter, desc, enabled
        self.stream, self.clock, self.every = stream, clock, every
        self.step, self.postfix = step, {}
        self.last = clock()

    def advance(self, step: int) -> None:
        self.step = step
        if self.clock() - self.last >= self.every:
            self._write()

    def set_postfix(self, postfix: dict[str, str]) -> None:
        self.postfix = postfix

    def close(self) -> None:
        self._write()
        self.enabled = False

    def line(self) -> str:
        """e.g. 'train: step 120/400 (30%) loss=3.210 tok/s=1234' or, bounded by time,
        'train: 2.5/12.0 min (21%) step=120 loss=3.210'."""
        m = self.meter
        position = m.position(self.step)
        if m.unit == "min":
            where, extra = f"{position:.1f}/{m.total:.1f} min", {"step": str(self.step)}
        else:
            where, extra = f"step {self.step}" + (f"/{m.total}" if m.total else ""), {}
        if m.total:
            where += f" ({100 * position / m.total:.0f}%)"
        fields = " ".join(f"{k}={v}" for k, v in {**extra, **self.postfix}.items())
        return f"{self.desc}: {where} {fields}".rstrip()

    def _write(self) -> None:
        self.last = self.clock()
        if self.enabled:
            print(self.line(), file=self.stream or sys.stderr, flush=True)


def interactive(stream: TextIO) -> bool:
    """A terminal, or a Jupyter kernel (where tqdm.auto draws a widget)."""
    try:
        return stream.isatty() or "ipykernel" in sys.modules
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_bar(
    tcfg: Any,
    step: int,
    steps_per_epoch: int | None,
    desc: str,
    enabled: bool,
    elapsed: Callable[[], float],
) -> ProgressBar | PlainLines:
    """A tqdm bar on a terminal, else plain lines (see PlainLines). It counts updates, or
    minutes of trainer.max_time when only time bounds the run (see Meter)."""
    meter = Meter.of(tcfg, steps_per_epoch, elapsed)
    kind = ProgressBar if interactive(sys.stderr) else PlainLines
    return kind(meter, step, desc, enabled)
