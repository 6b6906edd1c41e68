"""Why a run stops on its own: its budget (trainer.max_steps, trainer.max_time) or a
signal (SIGINT, SIGTERM), after which it saves last.pt and says how to resume."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any


class Budget:
    """trainer.max_epochs, max_steps and max_time, counted from the start of this process."""

    def __init__(self, tcfg: Any) -> None:
        self.max_epochs = tcfg.max_epochs
        self.max_steps = tcfg.max_steps
        self.max_time = tcfg.max_time
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def exhausted(self, step: int) -> str | None:
        """The stop reason once the steps or the time are spent."""
        if self.max_steps and step >= self.max_steps:
            return f"reached trainer.max_steps={self.max_steps}"
        if self.max_time and self.elapsed() >= self.max_time * 60:
            return f"reached trainer.max_time={self.max_time} minutes"
        return None

    def used(self, epochs_done: float, step: int) -> float:
        """The fraction of the budget spent: epochs of max_epochs, updates of max_steps or
        wall-clock of max_time, whichever is furthest along."""
        used = epochs_done / self.max_epochs
        if self.max_steps:
            used = step / self.max_steps
        if self.max_time:
            used = max(used, self.elapsed() / (self.max_time * 60))
        return used

    def time_left(self) -> str | None:
        """Minutes left of max_time, for the progress bar."""
        if not self.max_time:
            return None
        return f"{max(0.0, self.max_time * 60 - self.elapsed()) / 60:.1f}min"


def on_stop_signal(request_stop: Callable[[str], None]) -> Callable[[], None]:
    """SIGINT/SIGTERM call request_stop("received SIGINT") instead of killing the run.

    Returns what puts the previous handlers back, for the end of training: after it,
    Ctrl-C interrupts a Python session again, and the handler no longer keeps the finished
    run (its model, and under torchrun its process group) alive.
    """

    def handler(signum, _frame):
        request_stop(f"received {signal.Signals(signum).name}")

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread
            pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
