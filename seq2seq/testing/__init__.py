"""The plugin author kit: contract checks to call from a plugin's own pytest.

    from seq2seq.testing import check_cell
    from mycell import mycell

    def test_mycell_honours_the_cell_contract():
        check_cell(mycell)                       # default options
        check_cell(mycell, gate_bias=1.0)        # options are passed to the factory

`check_cell`, `check_tokenizer` and `check_search` run the contract of DESIGN.md §2
on small random inputs (a few hundred milliseconds) and raise a `ContractError`
(an AssertionError, so pytest shows it as a test failure) whose message says what
is wrong and how to fix it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.nn.recurrent import State, step_loop

__all__ = [
    "BUILTIN_CELL_SETTINGS",
    "CellContractError",
    "ContractError",
    "SearchContractError",
    "TokenizerContractError",
    "check_cell",
    "check_search",
    "check_tokenizer",
]


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


class ContractError(AssertionError):
    """A plugin does not honour its contract (DESIGN.md §2)."""


class CellContractError(ContractError):
    """A recurrent cell does not honour the `seq2seq.cells` contract."""


class TokenizerContractError(ContractError):
    """A tokenizer does not honour the `seq2seq.tokenizers` contract."""


class SearchContractError(ContractError):
    """A search strategy does not honour the `seq2seq.search` contract."""


# ------------------------------------------------------------------ helpers


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The checks use tiny tensors: extra intra-op threads only add overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def _leaves(state: Any) -> list[Any]:
    if isinstance(state, (tuple, list)):
        return [leaf for part in state for leaf in _leaves(part)]
    return [state]


def _structure(state: Any) -> Any:
    """A printable description: Tensor[3, 7] or (Tensor[3, 7], Tensor[3, 7])."""
    if isinstance(state, Tensor):
        return f"Tensor{list(state.shape)}"
    if isinstance(state, (tuple, list)):
        inner = ", ".join(str(_structure(s)) for s in state)
        return f"({inner})" if isinstance(state, tuple) else f"[{inner}]"
    return type(state).__name__


def _skeleton(state: Any) -> Any:
    """Nesting and shapes, for comparing two states' structure."""
    if isinstance(state, Tensor):
        return tuple(state.shape)
    if isinstance(state, (tuple, list)):
        return (type(state).__name__, tuple(_skeleton(s) for s in state))
    return type(state).__name__


def _max_diff(a: Any, b: Any) -> float:
    return max(
        float((x.detach().double() - y.detach().double()).abs().max()) if x.numel() else 0.0
        for x, y in zip(_leaves(a), _leaves(b), strict=True)
    )


def _rows(state: Any, index: slice) -> Any:
    if isinstance(state, Tensor):
        return state[index]
    return type(state)(_rows(s, index) for s in state)


def _clone(state: Any) -> Any:
    if isinstance(state, Tensor):
        return state.detach().clone()
    return type(state)(_clone(s) for s in state)


def _close(a: Any, b: Any, tol: float) -> bool:
    return _max_diff(a, b) <= tol


# ------------------------------------------------------------------ cells

_CELL_FIX = (
    "A cell is built as factory(input_size, hidden_size, **options) and offers "
    "initial_state(batch_size, device=None, dtype=None) and forward(x, state) -> (h, new_state)."
)


@_single_threaded
def check_cell(
    factory: Callable[..., nn.Module],
    input_size: int = 5,
    hidden_size: int = 7,
    **options: Any,
) -> None:
    """Check a `seq2seq.cells` factory against the cell contract; raise CellContractError.

    Checks: an nn.Module comes back; `initial_state` is batch-first and follows
    the `device` and `dtype` arguments; `forward` gives h [batch, hidden_size] and
    a state shaped like the incoming one, without changing the incoming state in
    place; h depends on the state; gradients reach the input, every parameter and
    earlier time steps (through the state); padding invariance (a padded row ends
    in the same state as the row run alone); batch independence; a `state_dict`
    round trip into a fresh instance (also through `torch.load(weights_only=True)`);
    determinism in eval mode; and, if the cell has `forward_sequence`, that it
    equals the step loop. Options are passed to the factory (validated first).
    """
    label = f"cell factory {_name(factory)}"

    def fail(what: str, fix: str) -> CellContractError:
        return CellContractError(f"{label}: {what}\nHow to fix: {fix}")

    try:
        registry.validate_options(
            "cell", _name(factory), factory, options, fixed=(input_size, hidden_size)
        )
    except registry.PluginError as exc:
        raise fail(
            str(exc),
            "pass only options the factory accepts, and give the factory the signature "
            "factory(input_size: int, hidden_size: int, **your_options).",
        ) from None

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        try:
            cell = factory(input_size, hidden_size, **options)
        except Exception as exc:
            raise fail(
                f"factory({input_size}, {hidden_size}, **{options!r}) raised "
                f"{type(exc).__name__}: {exc}",
                _CELL_FIX,
            ) from exc
        if not isinstance(cell, nn.Module):
            raise fail(
                f"the factory returned {type(cell).__name__}, not a torch.nn.Module.",
                "subclass torch.nn.Module so that parameters, .to(device), state_dict and "
                "checkpoints work, and return an instance from the factory.",
            )
        for method in ("initial_state", "forward"):
            if not callable(getattr(cell, method, None)):
                raise fail(f"the cell has no {method}() method.", _CELL_FIX)
        return cell

    cell = build(0)
    batch = 3
    gen = torch.Generator().manual_seed(1234)

    def randn(*shape: int, dtype=torch.float64) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    # -- initial_state: structure, batch dimension, dtype and device
    def initial(cell: nn.Module, batch_size: int, **kwargs: Any) -> State:
        try:
            return cell.initial_state(batch_size, **kwargs)
        except Exception as exc:
            raise fail(
                f"initial_state({batch_size}, {', '.join(f'{k}={v}' for k, v in kwargs.items())})"
                f" raised {type(exc).__name__}: {exc}",
                "define initial_state(self, batch_size, device=None, dtype=None) and create "
                "every tensor with torch.zeros(batch_size, ..., device=device, dtype=dtype) "
                "(None means the parameters' device and dtype).",
            ) from exc

    for batch_size in (1, 4):
        state = initial(cell, batch_size)
        leaves = _leaves(state)
        if not leaves or not all(isinstance(s, Tensor) for s in leaves):
            raise fail(
                f"initial_state({batch_size}) returned {_structure(state)}; "
                "it must be a Tensor or a tuple of Tensors.",
                "return a Tensor (e.g. h) or a tuple of Tensors (e.g. (h, c)).",
            )
        bad = [s for s in leaves if s.dim() == 0 or s.size(0) != batch_size]
        if bad:
            raise fail(
                f"initial_state({batch_size}) returned {_structure(state)}: every tensor must "
                f"be batch-first, [batch={batch_size}, ...].",
                "create the state with torch.zeros(batch_size, hidden_size, ...); the framework "
                "masks, reorders (beam search) and reverses rows along dimension 0.",
            )
    param = next(iter(cell.parameters()), None)
    default_dtype = param.dtype if param is not None else torch.get_default_dtype()
    state = initial(cell, 2)
    if any(s.dtype != default_dtype for s in _leaves(state) if s.is_floating_point()):
        raise fail(
            f"initial_state(2) gave dtypes {[str(s.dtype) for s in _leaves(state)]}, "
            f"but the parameters are {default_dtype}.",
            "with dtype=None, use the parameters' dtype (e.g. self.weight.dtype).",
        )
    state = initial(cell, 2, dtype=torch.float64)
    if any(s.dtype != torch.float64 for s in _leaves(state) if s.is_floating_point()):
        raise fail(
            f"initial_state(2, dtype=torch.float64) gave dtypes "
            f"{[str(s.dtype) for s in _leaves(state)]}.",
            "pass dtype=dtype to every tensor initial_state creates.",
        )
    state = initial(cell, 2, device=torch.device("meta"))
    if any(s.device.type != "meta" for s in _leaves(state)):
        raise fail(
            f"initial_state(2, device='meta') gave tensors on "
            f"{sorted({str(s.device) for s in _leaves(state)})}: the device argument is ignored "
            "(on a GPU this puts the state on the wrong device).",
            "pass device=device to every tensor initial_state creates.",
        )

    if torch.cuda.is_available():  # tensors created inside forward must follow the device
        gpu = build(0).cuda()
        try:
            h_gpu, s_gpu = gpu(
                torch.randn(2, input_size, device="cuda"), initial(gpu, 2, device="cuda")
            )
        except Exception as exc:
            raise fail(
                f"on CUDA, forward raised {type(exc).__name__}: {exc}",
                "create tensors inside forward and initial_state on the device of the inputs "
                "(x.new_zeros(...), torch.zeros(..., device=x.device)), not the default device.",
            ) from exc
        if any(t.device.type != "cuda" for t in [h_gpu, *_leaves(s_gpu)]):
            raise fail(
                "on CUDA, forward returned tensors on another device.",
                "create tensors on the device of the inputs (x.device).",
            )

    # From here on: float64, so that comparisons can be tight.
    cell = cell.double()
    cell.eval()
    s0 = initial(cell, batch, dtype=torch.float64)
    x = randn(batch, input_size)

    def step(cell: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
        try:
            out = cell(x, state)
        except Exception as exc:
            raise fail(
                f"forward(x {list(x.shape)}, state {_structure(state)}) raised "
                f"{type(exc).__name__}: {exc}",
                f"forward receives x [batch, input_size={input_size}] and the state as "
                "initial_state built it, and returns (h, new_state).",
            ) from exc
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise fail(
                f"forward returned {_structure(out)}; it must return a pair (h, new_state).",
                "return h, new_state (for a simple RNN: return h, h).",
            )
        return out[0], out[1]

    # -- forward: shapes, dtype and structure
    h, s1 = step(cell, x, s0)
    if not isinstance(h, Tensor) or tuple(h.shape) != (batch, hidden_size):
        raise fail(
            f"forward returned h {_structure(h)}; expected Tensor[{batch}, {hidden_size}] "
            f"([batch, hidden_size={hidden_size}]).",
            "return the output h shaped [batch, hidden_size] as the first element of "
            "(h, new_state); if your cell computes a larger vector, project it or return only "
            "its hidden part (the rest can live in the state).",
        )
    if _skeleton(s1) != _skeleton(s0):
        raise fail(
            f"forward returned a state {_structure(s1)} whose structure or shapes differ from "
            f"the incoming state {_structure(s0)}.",
            "return new_state with exactly the structure of initial_state (same tuple "
            "nesting, same shapes): the framework masks and stores it step after step.",
        )
    if h.dtype != torch.float64 or any(
        s.dtype != torch.float64 for s in _leaves(s1) if s.is_floating_point()
    ):
        raise fail(
            f"with float64 parameters and inputs, forward returned h {h.dtype} and state "
            f"{[str(s.dtype) for s in _leaves(s1)]}.",
            "do not hard-code dtypes (torch.float32) inside forward; derive them from the "
            "inputs or parameters.",
        )

    # -- h depends on the state, which forward must not change in place
    s_random = _rows_like(s0, randn)
    before = _clone(s_random)
    h_other, _ = step(cell, x, s_random)
    if not _close(s_random, before, 0.0):
        raise fail(
            "forward changed the incoming state in place.",
            "never modify `state` in place (no +=, .add_(), state[...] = ...): the framework "
            "keeps the old state of padded rows; build and return a new tensor.",
        )
    if _close(h, h_other, 1e-12):
        raise fail(
            "forward gives the same h for two different incoming states: the cell ignores "
            "its state, so it has no memory of earlier steps.",
            "compute h from both x and the incoming state (e.g. h = tanh(W x + U state + b)) "
            "and return the updated state as new_state.",
        )

    # -- gradient flow: inputs, every parameter, and across time through the state
    cell.train()
    steps = 4
    xs = randn(batch, steps, input_size).requires_grad_(True)
    out, final = step_loop(cell, xs, initial(cell, batch, dtype=torch.float64), None)
    loss = (out * randn(*out.shape)).sum() + sum(
        (s * 0.5).sum() for s in _leaves(final) if s.is_floating_point()
    )
    cell.zero_grad(set_to_none=True)
    try:
        loss.backward()
    except RuntimeError as exc:
        raise fail(
            f"backward through 4 steps failed: {exc}",
            "make forward differentiable: no .detach(), .item(), numpy or in-place updates "
            "of tensors that autograd needs.",
        ) from exc
    if xs.grad is None or float(xs.grad.abs().sum()) == 0.0:
        raise fail(
            "no gradient reaches the input x.",
            "compute h from x with differentiable torch operations (no .detach(), .data, "
            "torch.no_grad(), integer casts or argmax on the path from x to h).",
        )
    for pname, p in cell.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            raise fail(
                f"parameter '{pname}' gets no gradient: it is not used by forward, or used "
                "through .detach()/.data/torch.no_grad().",
                f"use '{pname}' in forward, or if it is a constant register it as a buffer "
                "(self.register_buffer) or set requires_grad=False.",
            )
        if not torch.isfinite(p.grad).all():
            raise fail(
                f"parameter '{pname}' gets a NaN/Inf gradient over 4 steps of random input.",
                "check divisions, logs and square roots in forward for zero or negative "
                "arguments (add an epsilon), and the initialisation scale.",
            )
    cell.zero_grad(set_to_none=True)
    out, _ = step_loop(cell, xs, initial(cell, batch, dtype=torch.float64), None)
    (through_time,) = torch.autograd.grad(out[:, -1].sum(), xs, allow_unused=True)
    if through_time is None or float(through_time[:, 0].abs().sum()) == 0.0:
        raise fail(
            f"the output at step {steps} does not depend on the input at step 1: no gradient "
            "flows through the state, so nothing is remembered across steps.",
            "return the updated state as new_state (not the incoming one, not a detached "
            "copy, not a fresh initial_state) and use the incoming state in forward.",
        )
    cell.eval()

    # -- determinism in eval mode
    h_a, s_a = step(cell, x, s0)
    h_c, s_c = step(cell, x, s0)
    if not (_close(h_a, h_c, 0.0) and _close(s_a, s_c, 0.0)):
        raise fail(
            "in eval mode, two identical forward calls gave different results.",
            "draw random numbers (dropout, noise) only when self.training is True, and keep "
            "no counters or caches between calls.",
        )

    # -- batch independence: another row's input never changes this row
    x2 = x.clone()
    x2[1:] = randn(batch - 1, input_size)
    h_b, s_b = step(cell, x2, _clone(s0))
    if not (
        _close(h_a[:1], h_b[:1], 1e-9)
        and _close(_rows(s_a, slice(0, 1)), _rows(s_b, slice(0, 1)), 1e-9)
    ):
        raise fail(
            "changing rows 1.. of the batch changed row 0's output: the cell mixes examples "
            f"across the batch (max difference {_max_diff(h_a[:1], h_b[:1]):.3g}).",
            "compute every row on its own: no mean/sum/max over dimension 0, no BatchNorm "
            "(use LayerNorm over features), no reshape or view that moves the batch dimension.",
        )
    xs = randn(batch, 5, input_size)
    xs2 = xs.clone()
    xs2[1:] = randn(batch - 1, 5, input_size)
    out_a, _ = step_loop(cell, xs, initial(cell, batch, dtype=torch.float64), None)
    out_b, _ = step_loop(cell, xs2, initial(cell, batch, dtype=torch.float64), None)
    if not _close(out_a[:1], out_b[:1], 1e-9):
        raise fail(
            "over several steps, changing rows 1.. of the batch changed row 0's outputs: "
            "information leaks across the batch (through the state or a module attribute).",
            "keep each row's computation independent and everything that changes over time "
            "in the returned state, not in attributes of the module.",
        )

    # -- padding invariance through the framework's step loop
    lengths = torch.tensor([5, 3, 1][:batch])
    padded_out, padded_final = step_loop(
        cell, xs, initial(cell, batch, dtype=torch.float64), lengths
    )
    for row, length in enumerate(lengths.tolist()):
        alone_out, alone_final = step_loop(
            cell, xs[row : row + 1, :length], initial(cell, 1, dtype=torch.float64), None
        )
        if not (
            _close(_rows(padded_final, slice(row, row + 1)), alone_final, 1e-9)
            and _close(padded_out[row : row + 1, :length], alone_out, 1e-9)
        ):
            raise fail(
                f"row {row} (length {length} of {xs.size(1)}) ends in a different state when "
                "run padded in a batch than when run alone for its own length: masked steps "
                "must leave the state unchanged.",
                "keep all time-varying values in the returned state (no step counters or "
                "cached tensors on self), never mix rows of the batch and never depend on the "
                "batch size.",
            )

    # -- save / load round trip into a fresh instance
    buffer = io.BytesIO()
    torch.save(cell.state_dict(), buffer)
    buffer.seek(0)
    try:
        saved = torch.load(buffer, weights_only=True)
    except Exception as exc:
        raise fail(
            f"the state_dict cannot be loaded with torch.load(weights_only=True) (how seq2seq "
            f"loads checkpoints): {exc}",
            "keep only tensors in the state_dict; store settings as plain attributes set by "
            "the factory from its options, not with get_extra_state.",
        ) from exc
    fresh = build(1).double()
    try:
        fresh.load_state_dict(saved)
    except Exception as exc:
        raise fail(
            f"load_state_dict into a fresh instance failed: {exc}",
            "create every parameter and buffer in __init__ with shapes that depend only on "
            "(input_size, hidden_size, options).",
        ) from exc
    fresh.eval()
    h_f, s_f = step(fresh, x, s0)
    if not (_close(h_a, h_f, 1e-12) and _close(s_a, s_f, 1e-12)):
        raise fail(
            "a fresh instance loaded with this cell's state_dict computes something else "
            f"(max difference {_max_diff(h_a, h_f):.3g}): some weights are not saved.",
            "register every tensor the cell uses as nn.Parameter or with self.register_buffer; "
            "plain tensor attributes are not in the state_dict (and so not in checkpoints).",
        )

    # -- the optional fused path equals the step loop
    fast = getattr(cell, "forward_sequence", None)
    if fast is not None:
        for lens in (None, lengths):
            try:
                fast_out, fast_final = fast(xs, initial(cell, batch, dtype=torch.float64), lens)
            except Exception as exc:
                raise fail(
                    f"forward_sequence(x {list(xs.shape)}, state, lengths={lens}) raised "
                    f"{type(exc).__name__}: {exc}",
                    "forward_sequence(x [B, T, I], state, lengths=None) must return outputs "
                    "[B, T, H] and the final state; or delete it to use the step loop.",
                ) from exc
            ref_out, ref_final = step_loop(
                cell, xs, initial(cell, batch, dtype=torch.float64), lens
            )
            if tuple(fast_out.shape) != tuple(ref_out.shape) or not (
                _close(fast_out, ref_out, 1e-8) and _close(fast_final, ref_final, 1e-8)
            ):
                raise fail(
                    f"forward_sequence (lengths={lens}) differs from the step-by-step forward "
                    "run by seq2seq.rnn.step_loop.",
                    "the fused path must compute exactly what forward does step by step, "
                    "with zero outputs on padding and each row's state after its last real "
                    "step; fix it or delete forward_sequence.",
                )


def _rows_like(state: State, randn: Callable[..., Tensor]) -> State:
    if isinstance(state, Tensor):
        return randn(*state.shape).to(state.dtype)
    return type(state)(_rows_like(s, randn) for s in state)


# ------------------------------------------------------------------ tokenizers

SAMPLE_TEXTS = [
    "A man in an orange hat starring at something.",
    "Two young, White males are outside near many bushes.",
    "A little girl climbing into a wooden playhouse.",
    "Several men in hard hats are operating a giant pulley system.",
    "A boston terrier is running on lush green grass in front of a white fence.",
    "Zwei junge Männer stehen im Freien in der Nähe vieler Büsche.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Un homme avec un chapeau orange regardant quelque chose.",
    "Dos hombres jóvenes están afuera cerca de muchos arbustos.",
    "The café's crème brûlée costs 7.50 €, or so they say!",
    'Is it 10:30? "Yes" - it is.',
    "a dog runs",
]


@_single_threaded
def check_tokenizer(
    cls: Any,
    texts: Sequence[str] | None = None,
    vocab_size: int = 200,
    **options: Any,
) -> None:
    """Check a `seq2seq.tokenizers` class against the tokenizer contract.

    Trains it with `cls.train(texts, vocab_size, **options)` (default: a dozen
    real-ish sentences in several languages) and checks: ids are ints in
    [0, vocab_size); `decode(encode(s)) == s` for the training sentences; the
    special ids 0..3 (pad, unk, bos, eos) are reserved: encode never returns
    pad/bos/eos and decode skips them; `state_dict` survives
    `torch.load(weights_only=True)` and `from_state_dict` gives the same
    tokenizer; `save(directory)` writes files; empty text works.
    """
    from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIALS

    texts = list(SAMPLE_TEXTS if texts is None else texts)
    label = f"tokenizer {_name(cls)}"

    def fail(what: str, fix: str) -> TokenizerContractError:
        return TokenizerContractError(f"{label}: {what}\nHow to fix: {fix}")

    for method in ("train", "from_state_dict"):
        if not callable(getattr(cls, method, None)):
            raise fail(
                f"has no classmethod {method}().",
                "the entry point must name a class with classmethods train(texts, vocab_size, "
                "**options) and from_state_dict(state).",
            )
    try:
        registry.validate_options(
            "tokenizer", _name(cls), cls.train, options, fixed=(texts, vocab_size)
        )
    except registry.PluginError as exc:
        raise fail(str(exc), "pass only options that train() accepts.") from None
    try:
        tok = cls.train(texts, vocab_size, **options)
    except Exception as exc:
        raise fail(
            f"train({len(texts)} texts, {vocab_size}) raised {type(exc).__name__}: {exc}",
            "train(texts: list[str], vocab_size: int, **options) must return an instance.",
        ) from exc
    for method in ("encode", "decode", "pieces", "state_dict", "save"):
        if not callable(getattr(tok, method, None)):
            raise fail(
                f"the trained tokenizer has no {method}() method.",
                "see the Protocol in "
                "seq2seq/tokenizers/__init__.py for every method a tokenizer offers.",
            )
    size = getattr(tok, "vocab_size", None)
    if not isinstance(size, int) or size <= len(SPECIALS) or size > vocab_size:
        raise fail(
            f"vocab_size is {size!r} after train(..., vocab_size={vocab_size}); it must be an "
            f"int in ({len(SPECIALS)}, {vocab_size}].",
            "set self.vocab_size to the number of ids (specials included), at most the "
            "requested size: the model's embedding and output layers are built from it.",
        )
    reserved = {PAD_ID, BOS_ID, EOS_ID}
    for text in texts:
        try:
            ids = tok.encode(text)
        except Exception as exc:
            raise fail(f"encode({text!r}) raised {type(exc).__name__}: {exc}", "") from exc
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise fail(
                f"encode({text!r}) returned {type(ids).__name__} "
                f"{ids if not isinstance(ids, list) else [type(i).__name__ for i in ids][:5]}.",
                "return a list of Python ints (convert numpy/tensor ids with int()).",
            )
        if any(i < 0 or i >= size for i in ids):
            raise fail(
                f"encode({text!r}) returned ids outside [0, vocab_size={size}): {ids}.",
                "number the vocabulary from 0 to vocab_size - 1, specials first.",
            )
        if reserved & set(ids):
            raise fail(
                f"encode({text!r}) returned reserved ids {sorted(reserved & set(ids))}: ids "
                f"{PAD_ID}, {BOS_ID} and {EOS_ID} are pad, bos and eos (1 is unk).",
                "reserve ids 0..3 for <pad>, <unk>, <s>, </s> (seq2seq.tokenizers.SPECIALS) "
                "and number real tokens from 4.",
            )
        back = tok.decode(ids)
        if back != text:
            raise fail(
                f"decode(encode(s)) does not give s back:\n  s      = {text!r}\n"
                f"  result = {back!r}",
                "make encode/decode reversible for normal text (keep whitespace information, "
                "e.g. a word-boundary marker like sentencepiece's '▁'); if the vocabulary is "
                "too small for these texts, pass a larger vocab_size to check_tokenizer.",
            )
        wrapped = tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID])
        if wrapped != back:
            raise fail(
                f"decode() does not skip bos/eos/pad: {wrapped!r} instead of {back!r}.",
                f"drop ids {PAD_ID}, {BOS_ID} and {EOS_ID} in decode.",
            )
    if tok.encode("") != [] or tok.decode([]) != "":
        raise fail(
            f"empty text: encode('') = {tok.encode('')!r}, decode([]) = {tok.decode([])!r}.",
            "encode('') must return [] and decode([]) must return ''.",
        )
    buffer = io.BytesIO()
    try:
        torch.save(tok.state_dict(), buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    except Exception as exc:
        raise fail(
            f"state_dict() cannot be stored in a checkpoint and read back with "
            f"torch.load(weights_only=True): {type(exc).__name__}: {exc}",
            "return plain data only from state_dict(): str, bytes, int, float, bool, and "
            "lists/dicts of those (no custom objects).",
        ) from exc
    try:
        again = cls.from_state_dict(state)
    except Exception as exc:
        raise fail(f"from_state_dict(state_dict()) raised {type(exc).__name__}: {exc}", "") from exc
    if getattr(again, "vocab_size", None) != size or any(
        again.encode(t) != tok.encode(t) for t in texts
    ):
        raise fail(
            "the tokenizer rebuilt with from_state_dict(state_dict()) encodes differently.",
            "put everything encode/decode need (vocabulary, model bytes, settings) into "
            "state_dict().",
        )
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "tokenizer"
        try:
            tok.save(target)
        except Exception as exc:
            raise fail(
                f"save(directory) raised {type(exc).__name__}: {exc}",
                "save(directory: Path) must create the directory (mkdir(parents=True, "
                "exist_ok=True)) and write human-readable files into it.",
            ) from exc
        if not target.is_dir() or not any(target.iterdir()):
            raise fail(
                "save(directory) wrote nothing.",
                "write the vocabulary (or model) into the given directory, creating it.",
            )


# ------------------------------------------------------------------ search


def _tiny_model(cell: str, seed: int) -> Any:
    from seq2seq.nn.model import ModelSpec, Seq2Seq
    from seq2seq.tokenizers import BOS_ID, PAD_ID

    torch.manual_seed(seed)
    spec = ModelSpec(
        src_vocab_size=19,
        tgt_vocab_size=23,
        cell=cell,
        embedding_size=8,
        hidden_size=12,
        dropout=0.0,
    )
    model = Seq2Seq(spec).eval()
    with torch.no_grad():
        # A model that likes pad and bos: a strategy that does not exclude them shows it.
        model.output_layer.bias[PAD_ID] += 4.0
        model.output_layer.bias[BOS_ID] += 4.0
    return model


@_single_threaded
def check_search(strategy: Callable[..., Any], **options: Any) -> None:
    """Check a `seq2seq.search` strategy on tiny random models (GRU and LSTM).

    Calls `strategy(model, src, src_lengths, max_length=, max_length_ratio=, **options)`
    through `seq2seq.search.generate` (as translation does) and checks: one list of
    hypotheses per sentence, each non-empty, best first by score; tokens are Python
    ints in [4, vocab) or unk (no pad, bos or eos); lengths respect max_length and
    max_length_ratio; scores are floats; a batch of one works; the model is left in
    eval mode with unchanged parameters.
    """
    from seq2seq.search import Hypothesis, generate, length_limits
    from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID

    label = f"search strategy {_name(strategy)}"

    def fail(what: str, fix: str) -> SearchContractError:
        return SearchContractError(f"{label}: {what}\nHow to fix: {fix}")

    name = f"_check_search_{id(strategy)}"
    registry.register("seq2seq.search", name, strategy)
    try:
        for cell in ("gru", "lstm"):
            model = _tiny_model(cell, seed=0)
            params = copy.deepcopy(model.state_dict())
            src = torch.tensor(
                [
                    [5, 6, 7, 8, 9],
                    [10, 11, 12, PAD_ID, PAD_ID],
                    [13, PAD_ID, PAD_ID, PAD_ID, PAD_ID],
                ]
            )
            lengths = torch.tensor([5, 3, 1])
            for max_length, ratio in ((30, 2.0), (3, 2.0), (30, 0.0)):
                try:
                    result = generate(
                        model,
                        src,
                        lengths,
                        name,
                        max_length=max_length,
                        max_length_ratio=ratio,
                        **options,
                    )
                except registry.PluginOptionError as exc:
                    raise fail(
                        str(exc),
                        "a strategy is strategy(model, src, src_lengths, *, max_length, "
                        "max_length_ratio, **your_options); pass only options it accepts.",
                    ) from None
                except Exception as exc:
                    raise fail(
                        f"raised {type(exc).__name__}: {exc} (on a tiny {cell} model)",
                        "use model.encode, model.init_state and model.decode_step; "
                        "reorder states with seq2seq.rnn.map_state (states may be tuples).",
                    ) from exc
                limits = length_limits(lengths, max_length, ratio).tolist()
                if not isinstance(result, list) or len(result) != src.size(0):
                    raise fail(
                        f"returned {type(result).__name__} of length "
                        f"{len(result) if hasattr(result, '__len__') else '?'} for a batch of "
                        f"{src.size(0)} sentences.",
                        "return a list with one list of Hypothesis per source sentence, in "
                        "input order.",
                    )
                for index, hyps in enumerate(result):
                    if not isinstance(hyps, list) or not hyps:
                        raise fail(
                            f"sentence {index}: got {hyps!r}, expected a non-empty list of "
                            "Hypothesis.",
                            "return at least one Hypothesis per sentence (possibly with no "
                            "tokens).",
                        )
                    for hyp in hyps:
                        if not isinstance(hyp, Hypothesis):
                            raise fail(
                                f"sentence {index}: {hyp!r} is not a seq2seq.search.Hypothesis.",
                                "return Hypothesis(tokens=[...], score=float).",
                            )
                        tokens = hyp.tokens
                        if not isinstance(tokens, list) or not all(
                            isinstance(t, int) and not isinstance(t, bool) for t in tokens
                        ):
                            raise fail(
                                f"sentence {index}: tokens {tokens!r} are not a list of ints.",
                                "convert with tensor.tolist() (not a tensor, not numpy ints).",
                            )
                        vocab = model.spec.tgt_vocab_size
                        bad = [
                            t for t in tokens if t in (PAD_ID, BOS_ID, EOS_ID) or not 0 <= t < vocab
                        ]
                        if bad:
                            bad = sorted(set(bad))
                            raise fail(
                                f"sentence {index}: tokens {tokens} contain {bad}: pad "
                                f"({PAD_ID}), bos ({BOS_ID}), eos ({EOS_ID}) or ids outside "
                                f"the vocabulary of {vocab}.",
                                "start from BOS without returning it, stop at EOS and drop it, "
                                "never emit pad or bos (set their log-probabilities to -inf).",
                            )
                        if len(tokens) > limits[index]:
                            raise fail(
                                f"sentence {index}: {len(tokens)} tokens with max_length="
                                f"{max_length}, max_length_ratio={ratio} (limit "
                                f"{limits[index]}).",
                                "stop after seq2seq.search.length_limits(src_lengths, "
                                "max_length, max_length_ratio) tokens per sentence.",
                            )
                        if not isinstance(hyp.score, float) or math.isnan(hyp.score):
                            raise fail(
                                f"sentence {index}: score {hyp.score!r} is not a float.",
                                "return the log-probability as a Python float (float(t)).",
                            )
                    scores = [h.score for h in hyps]
                    if scores != sorted(scores, reverse=True):
                        raise fail(
                            f"sentence {index}: hypotheses are not best first: scores {scores}.",
                            "sort each sentence's hypotheses by score, highest first.",
                        )
            one = generate(
                model, src[:1], lengths[:1], name, max_length=10, max_length_ratio=2.0, **options
            )
            if len(one) != 1:
                raise fail("a batch of one sentence did not give one result.", "")
            if model.training:
                raise fail(
                    "the model was left in training mode.",
                    "do not call model.train(); generation runs in eval mode.",
                )
            changed = [k for k, v in model.state_dict().items() if not torch.equal(v, params[k])]
            if changed:
                raise fail(
                    f"the model's weights changed: {changed[:3]}.",
                    "do not modify the model during search.",
                )
    finally:
        registry.unregister("seq2seq.search", name)
