"""Running any cell over time: the one loop, its fused shortcut, layers and directions.

A cell only knows one step (`seq2seq.contracts.Cell`). This module unrolls it over a padded
batch, keeps padded steps from touching the state, reverses sequences for the
backward direction and stacks layers. Cells that offer `forward_sequence` (the
built-ins, through torch's fused kernels) take that path when `fused=True`; the
tests check it equal to the step loop.

Custom cells can opt into a compiled step (`model.compile_cell`): the cell's
`forward` is TorchScript-ed when it is scriptable, else run through
`torch.compile`; the loop, masking and checkpoints stay the same (tests check the
numbers equal to the plain path).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq.nn.dropout import SequenceDropout

log = logging.getLogger(__name__)

State = Any  # a Tensor or a (nested) tuple of Tensors, each [batch, ...]


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, s) for s in state)
    if state is None:
        return None
    raise TypeError(f"a cell state must be a Tensor or a tuple of Tensors, got {type(state)}")


def zip_state(fn: Callable[[Tensor, Tensor], Tensor], a: State, b: State) -> State:
    if isinstance(a, Tensor):
        return fn(a, b)
    return type(a)(zip_state(fn, x, y) for x, y in zip(a, b, strict=True))


def first_tensor(state: State) -> Tensor:
    """The hidden state h by convention: the state itself, or its first element."""
    while not isinstance(state, Tensor):
        state = state[0]
    return state


def replace_first(state: State, h: Tensor) -> State:
    if isinstance(state, Tensor):
        return h
    return type(state)((replace_first(state[0], h), *state[1:]))


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each row of [B, T, ...] within its own length; padding stays in place."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def step_loop(
    cell: nn.Module,
    x: Tensor,
    state: State,
    lengths: Tensor | None,
    step: Callable[[Tensor, State], tuple[Tensor, State]] | None = None,
) -> tuple[Tensor, State]:
    """The plain path: one cell call per time step, padded steps masked out.

    `step` replaces `cell(x_t, state)` (the compiled path); it must compute the same.
    """
    step = step or cell
    outputs = []
    for t in range(x.size(1)):
        h, new_state = step(x[:, t], state)
        if lengths is not None:
            live = (lengths.to(x.device) > t).unsqueeze(1)
            new_state = zip_state(
                lambda new, old, live=live: torch.where(
                    live.view(-1, *[1] * (new.dim() - 1)), new, old
                ),
                new_state,
                state,
            )
            h = h * live.to(h.dtype)
        state = new_state
        outputs.append(h)
    return torch.stack(outputs, 1), state


def run_cell(
    cell: nn.Module,
    x: Tensor,
    state: State,
    lengths: Tensor | None = None,
    fused: bool = True,
    step: Callable[[Tensor, State], tuple[Tensor, State]] | None = None,
) -> tuple[Tensor, State]:
    """Run `cell` over x [B, T, I]; returns outputs [B, T, H] (zero on padding) and final state."""
    fast = getattr(cell, "forward_sequence", None) if fused else None
    if fast is not None:
        return fast(x, state, lengths)
    return step_loop(cell, x, state, lengths, step)


COMPILE_MODES = ("auto", "script", "compile")


class CompiledStep:
    """`cell(x, state)` made faster, computing the same numbers; parameters stay shared.

    mode "script": `torch.jit.script(cell)` (fails if the cell is not scriptable);
    mode "compile": `torch.compile(cell, dynamic=True)` (needs a C++ compiler on CPU;
    the first call compiles, which takes seconds); mode "auto": script, else compile.
    If torch.compile fails on its first call, a warning is logged and the plain cell
    is used from then on: opting in never breaks a run.
    """

    def __init__(self, cell: nn.Module, mode: bool | str = "auto") -> None:
        mode = "auto" if mode is True else str(mode)
        if mode not in COMPILE_MODES:
            raise ValueError(
                f"model.compile_cell must be false, true or one of {', '.join(COMPILE_MODES)}; "
                f"got '{mode}'"
            )
        self.cell = cell
        self.mode = mode
        self.kind = "plain"
        self.fn: Callable[..., Any] = cell
        self._first_call = True
        name = type(cell).__name__
        if mode in ("auto", "script"):
            try:
                with warnings.catch_warnings():
                    # torch.jit is deprecated in favour of torch.compile, but works and is quick.
                    warnings.simplefilter("ignore")
                    self.fn = torch.jit.script(cell)
                self.kind = "script"
                log.info("compile_cell: %s runs as TorchScript", name)
                return
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if mode == "script":
                    raise ValueError(
                        f"compile_cell=script: cell {name} is not scriptable ({first}). Make it "
                        "TorchScript-compatible (annotate forward: x: Tensor, state: Tensor or "
                        "Tuple[Tensor, Tensor]; only TorchScript-supported Python inside), or use "
                        "compile_cell=compile (torch.compile)."
                    ) from exc
                log.info(
                    "compile_cell: %s is not scriptable (%s); using torch.compile", name, first
                )
        self.fn = torch.compile(cell, dynamic=True)
        self.kind = "compile"

    def __call__(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.kind == "script":
            if self.fn.training != self.cell.training:
                self.fn.train(self.cell.training)
            return self.fn(x, state)
        if self.kind == "compile" and self._first_call:
            self._first_call = False
            try:
                return self.fn(x, state)
            except Exception as exc:
                log.warning(
                    "compile_cell: torch.compile failed for %s (%s: %s); using the plain step loop",
                    type(self.cell).__name__,
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                )
                self.kind, self.fn = "plain", self.cell
        return self.fn(x, state)


class RecurrentStack(nn.Module):
    """Layers × directions of one cell type, with dropout between layers."""

    def __init__(
        self,
        cell_factory: Callable[..., nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        cell_options: dict | None = None,
        fused: bool = True,
        compile_cell: bool | str = False,
    ) -> None:
        super().__init__()
        options = dict(cell_options or {})
        self.compile_cell = compile_cell
        self._compiled: dict[int, CompiledStep] = {}
        directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.hidden_size = hidden_size
        self.output_size = hidden_size * directions
        self.fused = fused
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else self.output_size
            self.layers.append(
                nn.ModuleList(
                    cell_factory(in_size, hidden_size, **options) for _ in range(directions)
                )
            )
        self.dropout = SequenceDropout(dropout)

    def _apply(self, fn, *args, **kwargs):
        self._compiled.clear()  # compiled steps are rebuilt after .to(device/dtype)
        return super()._apply(fn, *args, **kwargs)

    def set_compile(self, mode: bool | str) -> None:
        """Opt into (or out of) the compiled step for cells run by the step loop."""
        if mode and mode is not True and str(mode) not in COMPILE_MODES:
            raise ValueError(
                f"model.compile_cell must be false, true or one of {', '.join(COMPILE_MODES)}; "
                f"got '{mode}'"
            )
        self.compile_cell = mode
        self._compiled.clear()

    def _step_fn(self, cell: nn.Module) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        if not self.compile_cell:
            return cell
        compiled = self._compiled.get(id(cell))
        if compiled is None:
            compiled = self._compiled[id(cell)] = CompiledStep(cell, self.compile_cell)
        return compiled

    def initial_state(self, batch_size: int, device=None, dtype=None) -> list[list[State]]:
        return [
            [cell.initial_state(batch_size, device=device, dtype=dtype) for cell in layer]
            for layer in self.layers
        ]

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: list[list[State]] | None = None
    ) -> tuple[Tensor, list[list[State]]]:
        """x [B, T, I] → outputs [B, T, H·directions], final state per layer and direction."""
        if state is None:
            state = self.initial_state(x.size(0), device=x.device, dtype=x.dtype)
        finals = []
        for index, layer in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)
            forward_out, forward_final = run_cell(
                layer[0], x, state[index][0], lengths, self.fused, self._step_fn(layer[0])
            )
            layer_finals = [forward_final]
            outs = [forward_out]
            if self.bidirectional:
                backward_out, backward_final = run_cell(
                    layer[1],
                    reverse_padded(x, lengths),
                    state[index][1],
                    lengths,
                    self.fused,
                    self._step_fn(layer[1]),
                )
                outs.append(reverse_padded(backward_out, lengths))
                layer_finals.append(backward_final)
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
            finals.append(layer_finals)
        return x, finals

    def step(
        self,
        x: Tensor,
        state: list[list[State]],
        known: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, list[list[State]]]:
        """One time step through every layer (unidirectional stacks only: decoders).

        With `known` (this step's bias and the weights, from `known_input`), x holds only
        the first layer's remaining input features (see `FusedCell.step_with_input_bias`).
        """
        new_state = []
        for index, layer in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)
            if index == 0 and known is not None:
                x, layer_state = layer[0].step_with_input_bias(x, state[0][0], *known)
            else:
                x, layer_state = self._step_fn(layer[0])(x, state[index][0])
            new_state.append([layer_state])
        return x, new_state

    def known_input(self, known: Tensor) -> tuple[Tensor, Tensor] | None:
        """The first layer's projection of inputs known for all steps in advance [B, T,
        gates·H] and its weights for the other inputs, or None where that shortcut is off
        (plain path, compiled steps, cells without it)."""
        first = self.layers[0][0]
        if not self.fused or self.compile_cell or not hasattr(first, "known_input"):
            return None
        return first.known_input(known)


def compile_cells(module: nn.Module, mode: bool | str = True) -> None:
    """Set the compiled step on every RecurrentStack inside `module` (e.g. a Seq2Seq)."""
    for sub in module.modules():
        if isinstance(sub, RecurrentStack):
            sub.set_compile(mode)


def set_fused(module: nn.Module, fused: bool) -> None:
    """Switch every RecurrentStack inside `module` to the fused (True) or plain step path."""
    for sub in module.modules():
        if isinstance(sub, RecurrentStack):
            sub.fused = fused
