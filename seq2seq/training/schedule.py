"""The learning rate: a linear warm-up, then either a linear anneal to zero over the
budget or reduce-on-plateau driven by the dev score (which acts only after the warm-up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The fraction of trainer.lr for update `step` (0-based): (step + 1) / warmup_steps
    during the warm-up, then 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def anneal_factor(used: float) -> float:
    """Linear decay of the LR to zero over the budget (1 at the start, 0 at the end)."""
    return max(0.0, 1.0 - used)


class LRSchedule:
    """Sets the LR of every update. `budget_used` (0 → 1) is asked only when annealing."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr: float,
        warmup_steps: int,
        anneal: str,
        plateau: dict[str, Any],
    ) -> None:
        """`plateau`: mode ("max" or "min"), factor, patience and min_lr of the
        reduce-on-plateau scheduler."""
        self.optimizer = optimizer
        self.lr = lr
        self.warmup_steps = warmup_steps
        self.annealed = anneal == "linear"
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **plateau)

    def before_update(self, step: int, budget_used: Callable[[], float]) -> None:
        """The LR of update `step` (0-based)."""
        factor = warmup_factor(step, self.warmup_steps) if step < self.warmup_steps else 1.0
        if self.annealed:
            factor *= anneal_factor(budget_used())
        elif step >= self.warmup_steps:
            return  # the plateau scheduler owns the LR
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * factor

    def after_eval(self, step: int, score: float) -> None:
        """Reduce-on-plateau sees the dev score, unless the warm-up or the anneal owns the LR."""
        if step >= self.warmup_steps and not self.annealed:
            self.plateau.step(score)

    def state_dict(self) -> dict[str, Any]:
        return self.plateau.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau.load_state_dict(state)
