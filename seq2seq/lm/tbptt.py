"""Truncated backpropagation through time: which steps each update runs and backpropagates.

`python -m seq2seq.train +exp=char_lm` (or `+exp=hello`) lands here through
`seq2seq.train.train` when `task: lm`.

Truncated BPTT (Williams & Peng 1990), `trainer.tbptt.k1` / `trainer.tbptt.k2`:
each of the `trainer.batch_size` streams is consumed k1 characters at a time; after
every k1 new characters one update is made, whose loss is the cross-entropy of the
newest min(k1, k2) characters and whose backward pass reaches back exactly k2 steps
from the update. The hidden state is carried across updates and detached at the
truncation point, so no gradient ever flows further back than k2 steps:

- k1 = k2 = k: the usual chunked TBPTT (state carried, detached between chunks);
- k2 > k1: overlapping windows; the k2 - k1 older steps are re-run from the state
  that was kept (detached) at the window's start;
- k2 < k1: the first k1 - k2 new steps of a chunk only advance the state (no gradient,
  no loss).

Unset k1 means one update per pass over the stream; unset k2 means backpropagating
to the start of the stream; both unset is full BPTT (meant for short texts such as
"hello"). The state starts from zeros at the start of every epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seq2seq.nn.recurrent import map_state


def detach_state(state: Any) -> Any:
    return map_state(lambda t: t.detach(), state)


@dataclass(frozen=True)
class Window:
    """One truncated-BPTT update over positions of a stream (half-open ranges).

    The state kept at `anchor` is advanced without gradient to `start`; gradient
    flows over [start, end); the state at `split` is kept (detached) as the next
    update's anchor; the loss covers [loss_start, end).
    """

    anchor: int
    start: int
    split: int
    end: int
    loss_start: int


def plan_updates(length: int, k1: int | None, k2: int | None) -> list[Window]:
    """The updates TBPTT(k1, k2) makes over a stream of `length` steps (see module doc)."""
    if length < 1:
        return []
    for name, k in (("k1", k1), ("k2", k2)):
        if k is not None and (not isinstance(k, int) or k < 1):
            raise ValueError(f"trainer.tbptt.{name} must be a positive integer or null, got {k!r}")
    k1 = k1 or length
    k2 = k2 or length
    ends = [min(p + k1, length) for p in range(0, length, k1)]
    windows, anchor, previous = [], 0, 0
    for i, end in enumerate(ends):
        start = max(end - k2, anchor)
        next_end = ends[i + 1] if i + 1 < len(ends) else end
        split = min(max(next_end - k2, start), end)
        windows.append(Window(anchor, start, split, end, max(previous, start)))
        anchor, previous = split, end
    return windows


Runner = Callable[[int, int, Any], tuple[Tensor, Any]]


def run_window(run: Runner, state: Any, window: Window) -> tuple[Tensor, Any]:
    """Run one TBPTT window; returns outputs for [loss_start, end) and the next anchor state.

    `run(lo, hi, state)` runs the network over positions [lo, hi) from `state` and
    returns (outputs [B, hi-lo, ...], state after position hi-1).
    """
    w = window
    if w.start > w.anchor:
        with torch.no_grad():
            _, state = run(w.anchor, w.start, state)
    state = detach_state(state)  # the truncation point: no gradient flows further back
    outputs = []
    if w.split > w.start:
        out, state = run(w.start, w.split, state)
        outputs.append(out)
    next_anchor = detach_state(state)
    if w.end > w.split:
        out, state = run(w.split, w.end, state)
        outputs.append(out)
    out = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
    return out[:, w.loss_start - w.start :], next_anchor
