"""Where a training run stands (saved in every checkpoint, so a resume continues
exactly), and what it reports as it goes: metrics.jsonl records and a progress bar."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def progress_bar(
    tcfg: Any, step: int, steps_per_epoch: int | None, desc: str, enabled: bool
) -> tqdm:
    """steps_per_epoch None: unknown (streamed data), so no total unless max_steps."""
    per_epoch = tcfg.max_epochs * steps_per_epoch if steps_per_epoch else None
    return tqdm(
        total=tcfg.max_steps or per_epoch,
        initial=step,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
        disable=not enabled,
    )
