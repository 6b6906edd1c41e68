"""What every contract check shares: the errors, clause reporting and state helpers."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from seq2seq import registry


class ContractError(AssertionError):
    """A plugin does not honour its contract (the Protocols in `seq2seq.contracts`)."""


class CellContractError(ContractError):
    """A recurrent cell does not honour the `seq2seq.cells` contract."""


class DecoderContractError(ContractError):
    """A decoder does not honour the `seq2seq.decoders` contract."""


class TokenizerContractError(ContractError):
    """A tokenizer does not honour the `seq2seq.tokenizers` contract."""


class SearchContractError(ContractError):
    """A search strategy does not honour the `seq2seq.search` contract."""


class Failure:
    """Builds the error a clause raises: `<plugin>: [<clause>] <what>\\nHow to fix: <fix>`."""

    def __init__(self, error: type[ContractError], label: str) -> None:
        self.error, self.label, self.clause = error, label, ""

    def __call__(self, what: str, fix: str) -> ContractError:
        where = f" [{self.clause}]" if self.clause else ""
        return self.error(f"{self.label}:{where} {what}\nHow to fix: {fix}")

    def run(self, clauses: list[tuple[str, Callable[..., None]]], *args: Any) -> None:
        """Run each named clause in order; the first that fails names itself in the error."""
        for clause, check in clauses:
            self.clause = clause
            check(*args)
        self.clause = ""


def check_signature(
    fail: Failure, kind: str, factory: Any, options: dict, fix: str, **fixed
) -> None:
    """The registry's option check (what seq2seq runs on the config), as a contract failure."""
    try:
        registry.validate_options(kind, name_of(factory), factory, options, **fixed)
    except registry.PluginError as exc:
        raise fail(str(exc), fix) from None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The checks use tiny tensors: extra intra-op threads only add overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


def name_of(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def leaves(state: Any) -> list[Any]:
    if isinstance(state, (tuple, list)):
        return [leaf for part in state for leaf in leaves(part)]
    return [state]


def structure(state: Any) -> Any:
    """A printable description: Tensor[3, 7] or (Tensor[3, 7], Tensor[3, 7])."""
    if isinstance(state, Tensor):
        return f"Tensor{list(state.shape)}"
    if isinstance(state, (tuple, list)):
        inner = ", ".join(str(structure(s)) for s in state)
        return f"({inner})" if isinstance(state, tuple) else f"[{inner}]"
    return type(state).__name__


def skeleton(state: Any) -> Any:
    """Nesting and shapes, for comparing two states' structure."""
    if isinstance(state, Tensor):
        return tuple(state.shape)
    if isinstance(state, (tuple, list)):
        return (type(state).__name__, tuple(skeleton(s) for s in state))
    return type(state).__name__


def max_diff(a: Any, b: Any) -> float:
    return max(
        float((x.detach().double() - y.detach().double()).abs().max()) if x.numel() else 0.0
        for x, y in zip(leaves(a), leaves(b), strict=True)
    )


def close(a: Any, b: Any, tol: float) -> bool:
    return max_diff(a, b) <= tol


def rows(state: Any, index: slice) -> Any:
    if isinstance(state, Tensor):
        return state[index]
    return type(state)(rows(s, index) for s in state)


def clone(state: Any) -> Any:
    if isinstance(state, Tensor):
        return state.detach().clone()
    return type(state)(clone(s) for s in state)


def random_like(state: Any, randn: Callable[..., Tensor]) -> Any:
    if isinstance(state, Tensor):
        return randn(*state.shape).to(state.dtype)
    return type(state)(random_like(s, randn) for s in state)


def weights_only_round_trip(state: Any) -> Any:
    """`state` saved and read back as seq2seq reads checkpoints (weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)
