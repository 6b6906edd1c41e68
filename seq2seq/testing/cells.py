"""`check_cell`: the `seq2seq.cells` contract (`seq2seq.contracts.Cell`), clause by clause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq.nn.recurrent import State, step_loop
from seq2seq.testing.common import (
    CellContractError,
    Failure,
    check_signature,
    clone,
    close,
    leaves,
    max_diff,
    name_of,
    random_like,
    rows,
    single_threaded,
    skeleton,
    structure,
    weights_only_round_trip,
)

# Every built-in cell setting, as (name, options): what the kit and the tests run over.
BUILTIN_CELL_SETTINGS = [
    ("elman", {"activation": "tanh"}),
    ("elman", {"activation": "relu"}),
    ("elman", {"activation": "sigmoid"}),
    ("gru", {}),
    ("lstm", {}),
    ("lstm", {"forget_bias": 1.0}),
    ("layernorm_gru", {}),
    ("layernorm_lstm", {}),
    ("layernorm_lstm", {"forget_bias": 1.0}),
]

_CELL_FIX = (
    "A cell is built as factory(input_size, hidden_size, **options) and offers "
    "initial_state(batch_size, device=None, dtype=None) and forward(x, state) -> (h, new_state)."
)
BATCH, STEPS = 3, 4


class CellUnderTest:
    """A cell factory with the calls every clause makes, each failing with a clear message."""

    def __init__(
        self, factory: Callable[..., nn.Module], input_size: int, hidden_size: int, options
    ):
        self.factory, self.options = factory, options
        self.input_size, self.hidden_size = input_size, hidden_size
        self.fail = Failure(CellContractError, f"cell factory {name_of(factory)}")
        self.gen = torch.Generator().manual_seed(1234)
        self.cell: nn.Module | None = None  # float64, eval mode: set once construction passed

    def randn(self, *shape: int, dtype=torch.float64) -> Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=dtype)

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        try:
            cell = self.factory(self.input_size, self.hidden_size, **self.options)
        except Exception as exc:
            raise self.fail(
                f"factory({self.input_size}, {self.hidden_size}, **{self.options!r}) raised "
                f"{type(exc).__name__}: {exc}",
                _CELL_FIX,
            ) from exc
        if not isinstance(cell, nn.Module):
            raise self.fail(
                f"the factory returned {type(cell).__name__}, not a torch.nn.Module.",
                "subclass torch.nn.Module so that parameters, .to(device), state_dict and "
                "checkpoints work, and return an instance from the factory.",
            )
        for method in ("initial_state", "forward"):
            if not callable(getattr(cell, method, None)):
                raise self.fail(f"the cell has no {method}() method.", _CELL_FIX)
        return cell

    def initial(self, cell: nn.Module, batch_size: int, **kwargs: Any) -> State:
        try:
            return cell.initial_state(batch_size, **kwargs)
        except Exception as exc:
            raise self.fail(
                f"initial_state({batch_size}, {', '.join(f'{k}={v}' for k, v in kwargs.items())})"
                f" raised {type(exc).__name__}: {exc}",
                "define initial_state(self, batch_size, device=None, dtype=None) and create "
                "every tensor with torch.zeros(batch_size, ..., device=device, dtype=dtype) "
                "(None means the parameters' device and dtype).",
            ) from exc

    def start(self, batch: int = BATCH) -> State:
        """A float64 initial state of the float64 cell."""
        return self.initial(self.cell, batch, dtype=torch.float64)

    def step(self, cell: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
        try:
            out = cell(x, state)
        except Exception as exc:
            raise self.fail(
                f"forward(x {list(x.shape)}, state {structure(state)}) raised "
                f"{type(exc).__name__}: {exc}",
                f"forward receives x [batch, input_size={self.input_size}] and the state as "
                "initial_state built it, and returns (h, new_state).",
            ) from exc
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise self.fail(
                f"forward returned {structure(out)}; it must return a pair (h, new_state).",
                "return h, new_state (for a simple RNN: return h, h).",
            )
        return out[0], out[1]


# ------------------------------------------------------------------ clauses


def factory_signature(t: CellUnderTest) -> None:
    check_signature(
        t.fail,
        "cell",
        t.factory,
        t.options,
        "pass only options the factory accepts, and give the factory the signature "
        "factory(input_size: int, hidden_size: int, **your_options).",
        fixed=(t.input_size, t.hidden_size),
    )


def builds_a_module(t: CellUnderTest) -> None:
    t.cell = t.build(0)


def initial_state_batch_first(t: CellUnderTest) -> None:
    for batch_size in (1, 4):
        state = t.initial(t.cell, batch_size)
        parts = leaves(state)
        if not parts or not all(isinstance(s, Tensor) for s in parts):
            raise t.fail(
                f"initial_state({batch_size}) returned {structure(state)}; "
                "it must be a Tensor or a tuple of Tensors.",
                "return a Tensor (e.g. h) or a tuple of Tensors (e.g. (h, c)).",
            )
        if any(s.dim() == 0 or s.size(0) != batch_size for s in parts):
            raise t.fail(
                f"initial_state({batch_size}) returned {structure(state)}: every tensor must "
                f"be batch-first, [batch={batch_size}, ...].",
                "create the state with torch.zeros(batch_size, hidden_size, ...); the framework "
                "masks, reorders (beam search) and reverses rows along dimension 0.",
            )


def initial_state_dtype_and_device(t: CellUnderTest) -> None:
    param = next(iter(t.cell.parameters()), None)
    default_dtype = param.dtype if param is not None else torch.get_default_dtype()
    state = leaves(t.initial(t.cell, 2))
    if any(s.dtype != default_dtype for s in state if s.is_floating_point()):
        raise t.fail(
            f"initial_state(2) gave dtypes {[str(s.dtype) for s in state]}, "
            f"but the parameters are {default_dtype}.",
            "with dtype=None, use the parameters' dtype (e.g. self.weight.dtype).",
        )
    state = leaves(t.initial(t.cell, 2, dtype=torch.float64))
    if any(s.dtype != torch.float64 for s in state if s.is_floating_point()):
        raise t.fail(
            f"initial_state(2, dtype=torch.float64) gave dtypes {[str(s.dtype) for s in state]}.",
            "pass dtype=dtype to every tensor initial_state creates.",
        )
    state = leaves(t.initial(t.cell, 2, device=torch.device("meta")))
    if any(s.device.type != "meta" for s in state):
        raise t.fail(
            f"initial_state(2, device='meta') gave tensors on "
            f"{sorted({str(s.device) for s in state})}: the device argument is ignored "
            "(on a GPU this puts the state on the wrong device).",
            "pass device=device to every tensor initial_state creates.",
        )


def runs_on_cuda(t: CellUnderTest) -> None:
    """Tensors created inside forward follow the device (checked where CUDA is available)."""
    if not torch.cuda.is_available():
        return
    gpu = t.build(0).cuda()
    try:
        h, state = gpu(
            torch.randn(2, t.input_size, device="cuda"), t.initial(gpu, 2, device="cuda")
        )
    except Exception as exc:
        raise t.fail(
            f"on CUDA, forward raised {type(exc).__name__}: {exc}",
            "create tensors inside forward and initial_state on the device of the inputs "
            "(x.new_zeros(...), torch.zeros(..., device=x.device)), not the default device.",
        ) from exc
    if any(s.device.type != "cuda" for s in [h, *leaves(state)]):
        raise t.fail(
            "on CUDA, forward returned tensors on another device.",
            "create tensors on the device of the inputs (x.device).",
        )


def forward_shapes(t: CellUnderTest) -> None:
    t.cell = t.cell.double().eval()  # from here on float64, so comparisons can be tight
    s0 = t.start()
    h, s1 = t.step(t.cell, t.randn(BATCH, t.input_size), s0)
    if not isinstance(h, Tensor) or tuple(h.shape) != (BATCH, t.hidden_size):
        raise t.fail(
            f"forward returned h {structure(h)}; expected Tensor[{BATCH}, {t.hidden_size}] "
            f"([batch, hidden_size={t.hidden_size}]).",
            "return the output h shaped [batch, hidden_size] as the first element of "
            "(h, new_state); if your cell computes a larger vector, project it or return only "
            "its hidden part (the rest can live in the state).",
        )
    if skeleton(s1) != skeleton(s0):
        raise t.fail(
            f"forward returned a state {structure(s1)} whose structure or shapes differ from "
            f"the incoming state {structure(s0)}.",
            "return new_state with exactly the structure of initial_state (same tuple "
            "nesting, same shapes): the framework masks and stores it step after step.",
        )
    if h.dtype != torch.float64 or any(
        s.dtype != torch.float64 for s in leaves(s1) if s.is_floating_point()
    ):
        raise t.fail(
            f"with float64 parameters and inputs, forward returned h {h.dtype} and state "
            f"{[str(s.dtype) for s in leaves(s1)]}.",
            "do not hard-code dtypes (torch.float32) inside forward; derive them from the "
            "inputs or parameters.",
        )


def state_not_changed_in_place(t: CellUnderTest) -> None:
    state = random_like(t.start(), t.randn)
    before = clone(state)
    t.step(t.cell, t.randn(BATCH, t.input_size), state)
    if not close(state, before, 0.0):
        raise t.fail(
            "forward changed the incoming state in place.",
            "never modify `state` in place (no +=, .add_(), state[...] = ...): the framework "
            "keeps the old state of padded rows; build and return a new tensor.",
        )


def output_depends_on_state(t: CellUnderTest) -> None:
    x = t.randn(BATCH, t.input_size)
    h, _ = t.step(t.cell, x, t.start())
    h_other, _ = t.step(t.cell, x, random_like(t.start(), t.randn))
    if close(h, h_other, 1e-12):
        raise t.fail(
            "forward gives the same h for two different incoming states: the cell ignores "
            "its state, so it has no memory of earlier steps.",
            "compute h from both x and the incoming state (e.g. h = tanh(W x + U state + b)) "
            "and return the updated state as new_state.",
        )


def gradients_reach_inputs_and_parameters(t: CellUnderTest) -> None:
    cell = t.cell.train()
    xs = t.randn(BATCH, STEPS, t.input_size).requires_grad_(True)
    out, final = step_loop(cell, xs, t.start(), None)
    loss = (out * t.randn(*out.shape)).sum() + sum(
        (s * 0.5).sum() for s in leaves(final) if s.is_floating_point()
    )
    cell.zero_grad(set_to_none=True)
    try:
        loss.backward()
    except RuntimeError as exc:
        raise t.fail(
            f"backward through {STEPS} steps failed: {exc}",
            "make forward differentiable: no .detach(), .item(), numpy or in-place updates "
            "of tensors that autograd needs.",
        ) from exc
    finally:
        cell.eval()
    if xs.grad is None or float(xs.grad.abs().sum()) == 0.0:
        raise t.fail(
            "no gradient reaches the input x.",
            "compute h from x with differentiable torch operations (no .detach(), .data, "
            "torch.no_grad(), integer casts or argmax on the path from x to h).",
        )
    for pname, p in cell.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            raise t.fail(
                f"parameter '{pname}' gets no gradient: it is not used by forward, or used "
                "through .detach()/.data/torch.no_grad().",
                f"use '{pname}' in forward, or if it is a constant register it as a buffer "
                "(self.register_buffer) or set requires_grad=False.",
            )
        if not torch.isfinite(p.grad).all():
            raise t.fail(
                f"parameter '{pname}' gets a NaN/Inf gradient over {STEPS} steps of random input.",
                "check divisions, logs and square roots in forward for zero or negative "
                "arguments (add an epsilon), and the initialisation scale.",
            )
    cell.zero_grad(set_to_none=True)


def remembers_across_steps(t: CellUnderTest) -> None:
    xs = t.randn(BATCH, STEPS, t.input_size).requires_grad_(True)
    with torch.enable_grad():
        out, _ = step_loop(t.cell.train(), xs, t.start(), None)
        (through_time,) = torch.autograd.grad(out[:, -1].sum(), xs, allow_unused=True)
    t.cell.eval()
    if through_time is None or float(through_time[:, 0].abs().sum()) == 0.0:
        raise t.fail(
            f"the output at step {STEPS} does not depend on the input at step 1: no gradient "
            "flows through the state, so nothing is remembered across steps.",
            "return the updated state as new_state (not the incoming one, not a detached "
            "copy, not a fresh initial_state) and use the incoming state in forward.",
        )


def deterministic_in_eval(t: CellUnderTest) -> None:
    x, s0 = t.randn(BATCH, t.input_size), t.start()
    h_a, s_a = t.step(t.cell, x, s0)
    h_b, s_b = t.step(t.cell, x, s0)
    if not (close(h_a, h_b, 0.0) and close(s_a, s_b, 0.0)):
        raise t.fail(
            "in eval mode, two identical forward calls gave different results.",
            "draw random numbers (dropout, noise) only when self.training is True, and keep "
            "no counters or caches between calls.",
        )


def rows_independent(t: CellUnderTest) -> None:
    x = t.randn(BATCH, t.input_size)
    other = x.clone()
    other[1:] = t.randn(BATCH - 1, t.input_size)
    h_a, s_a = t.step(t.cell, x, t.start())
    h_b, s_b = t.step(t.cell, other, t.start())
    first = slice(0, 1)
    if not (
        close(h_a[first], h_b[first], 1e-9) and close(rows(s_a, first), rows(s_b, first), 1e-9)
    ):
        raise t.fail(
            "changing rows 1.. of the batch changed row 0's output: the cell mixes examples "
            f"across the batch (max difference {max_diff(h_a[first], h_b[first]):.3g}).",
            "compute every row on its own: no mean/sum/max over dimension 0, no BatchNorm "
            "(use LayerNorm over features), no reshape or view that moves the batch dimension.",
        )
    xs = t.randn(BATCH, 5, t.input_size)
    others = xs.clone()
    others[1:] = t.randn(BATCH - 1, 5, t.input_size)
    out_a, _ = step_loop(t.cell, xs, t.start(), None)
    out_b, _ = step_loop(t.cell, others, t.start(), None)
    if not close(out_a[first], out_b[first], 1e-9):
        raise t.fail(
            "over several steps, changing rows 1.. of the batch changed row 0's outputs: "
            "information leaks across the batch (through the state or a module attribute).",
            "keep each row's computation independent and everything that changes over time "
            "in the returned state, not in attributes of the module.",
        )


LENGTHS = torch.tensor([5, 3, 1])


def padding_invariance(t: CellUnderTest) -> None:
    xs = t.randn(BATCH, 5, t.input_size)
    padded_out, padded_final = step_loop(t.cell, xs, t.start(), LENGTHS)
    for row, length in enumerate(LENGTHS.tolist()):
        alone_out, alone_final = step_loop(t.cell, xs[row : row + 1, :length], t.start(1), None)
        if not (
            close(rows(padded_final, slice(row, row + 1)), alone_final, 1e-9)
            and close(padded_out[row : row + 1, :length], alone_out, 1e-9)
        ):
            raise t.fail(
                f"row {row} (length {length} of {xs.size(1)}) ends in a different state when "
                "run padded in a batch than when run alone for its own length: masked steps "
                "must leave the state unchanged.",
                "keep all time-varying values in the returned state (no step counters or "
                "cached tensors on self), never mix rows of the batch and never depend on the "
                "batch size.",
            )


def state_dict_round_trip(t: CellUnderTest) -> None:
    try:
        saved = weights_only_round_trip(t.cell.state_dict())
    except Exception as exc:
        raise t.fail(
            f"the state_dict cannot be loaded with torch.load(weights_only=True) (how seq2seq "
            f"loads checkpoints): {exc}",
            "keep only tensors in the state_dict; store settings as plain attributes set by "
            "the factory from its options, not with get_extra_state.",
        ) from exc
    fresh = t.build(1).double()
    try:
        fresh.load_state_dict(saved)
    except Exception as exc:
        raise t.fail(
            f"load_state_dict into a fresh instance failed: {exc}",
            "create every parameter and buffer in __init__ with shapes that depend only on "
            "(input_size, hidden_size, options).",
        ) from exc
    x, s0 = t.randn(BATCH, t.input_size), t.start()
    h_a, s_a = t.step(t.cell, x, s0)
    h_f, s_f = t.step(fresh.eval(), x, s0)
    if not (close(h_a, h_f, 1e-12) and close(s_a, s_f, 1e-12)):
        raise t.fail(
            "a fresh instance loaded with this cell's state_dict computes something else "
            f"(max difference {max_diff(h_a, h_f):.3g}): some weights are not saved.",
            "register every tensor the cell uses as nn.Parameter or with self.register_buffer; "
            "plain tensor attributes are not in the state_dict (and so not in checkpoints).",
        )


def fused_equals_step_loop(t: CellUnderTest) -> None:
    fast = getattr(t.cell, "forward_sequence", None)
    if fast is None:
        return
    xs = t.randn(BATCH, 5, t.input_size)
    for lengths in (None, LENGTHS):
        try:
            fast_out, fast_final = fast(xs, t.start(), lengths)
        except Exception as exc:
            raise t.fail(
                f"forward_sequence(x {list(xs.shape)}, state, lengths={lengths}) raised "
                f"{type(exc).__name__}: {exc}",
                "forward_sequence(x [B, T, I], state, lengths=None) must return outputs "
                "[B, T, H] and the final state; or delete it to use the step loop.",
            ) from exc
        ref_out, ref_final = step_loop(t.cell, xs, t.start(), lengths)
        if tuple(fast_out.shape) != tuple(ref_out.shape) or not (
            close(fast_out, ref_out, 1e-8) and close(fast_final, ref_final, 1e-8)
        ):
            raise t.fail(
                f"forward_sequence (lengths={lengths}) differs from the step-by-step forward "
                "run by seq2seq.nn.recurrent.step_loop.",
                "the fused path must compute exactly what forward does step by step, "
                "with zero outputs on padding and each row's state after its last real "
                "step; fix it or delete forward_sequence.",
            )


CELL_CLAUSES: list[tuple[str, Callable[[CellUnderTest], None]]] = [
    ("factory signature", factory_signature),
    ("builds a module", builds_a_module),
    ("initial state is batch-first", initial_state_batch_first),
    ("initial state follows dtype and device", initial_state_dtype_and_device),
    ("runs on CUDA", runs_on_cuda),
    ("forward shapes", forward_shapes),
    ("state not changed in place", state_not_changed_in_place),
    ("output depends on the state", output_depends_on_state),
    ("gradient flow", gradients_reach_inputs_and_parameters),
    ("memory across steps", remembers_across_steps),
    ("deterministic in eval mode", deterministic_in_eval),
    ("rows independent", rows_independent),
    ("padding invariance", padding_invariance),
    ("save/load", state_dict_round_trip),
    ("fused equals step", fused_equals_step_loop),
]
"""The cell contract's clauses, in the order `check_cell` runs them."""


@single_threaded
def check_cell(
    factory: Callable[..., nn.Module],
    input_size: int = 5,
    hidden_size: int = 7,
    **options: Any,
) -> None:
    """Check a `seq2seq.cells` factory against the cell contract; raise CellContractError.

    Runs every clause of `CELL_CLAUSES` on small random inputs: an nn.Module comes
    back; `initial_state` is batch-first and follows the `device` and `dtype`
    arguments; `forward` gives h [batch, hidden_size] and a state shaped like the
    incoming one, without changing the incoming state in place; h depends on the
    state; gradients reach the input, every parameter and earlier time steps
    (through the state); determinism in eval mode; batch independence; padding
    invariance (a padded row ends in the same state as the row run alone); a
    `state_dict` round trip into a fresh instance (through
    `torch.load(weights_only=True)`); and, if the cell has `forward_sequence`, that
    it equals the step loop. Options are passed to the factory (validated first).
    The error names the failing clause, what is wrong and how to fix it.
    """
    t = CellUnderTest(factory, input_size, hidden_size, options)
    t.fail.run(CELL_CLAUSES, t)
