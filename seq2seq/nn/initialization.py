"""Weight initialisation schemes (`model.init`, `model.init_std`).

`initialize(module, scheme, std)` re-initialises every weight matrix (every
parameter with two or more dimensions) inside `module`; biases are left as the
modules built them, so e.g. an LSTM's `forget_bias` survives. Schemes:

- ``default``: keep torch's own initialisation (what the modules were built with);
- ``gaussian``: N(0, std²) entries; ``std=1`` is the classic setting of the early
  recurrent-network papers (it makes a tanh Elman network's gradients explode);
- ``xavier``: Glorot/Xavier normal, std = sqrt(2 / (fan_in + fan_out));
- ``orthogonal``: (semi-)orthogonal matrices (Saxe et al. 2014), scaled by 1;
- ``uniform``: every parameter of the whole model, embeddings and biases included,
  U(-init_range, init_range) (OpenNMT-py's ``param_init 0.1``); see `uniform_all`.

Gated cells keep their gates stacked in one matrix (torch's ``[k·H, ·]`` layout).
When a weight's rows are a multiple k > 1 of its module's ``hidden_size``, each of
the k gate blocks is initialised on its own, so that e.g. every gate's recurrent
matrix is orthogonal and Xavier uses the fan of one gate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SCHEMES = ("default", "gaussian", "xavier", "orthogonal", "uniform")


def _fill(weight: Tensor, scheme: str, std: float) -> None:
    if scheme == "gaussian":
        nn.init.normal_(weight, mean=0.0, std=std)
    elif scheme == "xavier":
        nn.init.xavier_normal_(weight)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight)


def _blocks(weight: Tensor, hidden_size: int | None) -> list[Tensor]:
    rows = weight.size(0)
    if isinstance(hidden_size, int) and 0 < hidden_size < rows and rows % hidden_size == 0:
        return list(weight.split(hidden_size, dim=0))
    return [weight]


def initialize(module: nn.Module, scheme: str = "default", std: float = 1.0) -> nn.Module:
    """Re-initialise the weight matrices of `module` in place with `scheme`; returns `module`.

    `std` is used by ``gaussian`` only. Unknown schemes or a non-positive std raise
    ValueError naming the `model.init` / `model.init_std` keys.
    """
    if scheme not in SCHEMES:
        raise ValueError(
            f"model.init: unknown scheme '{scheme}'; choose one of {', '.join(SCHEMES)}"
        )
    if scheme == "gaussian" and not (std > 0):
        raise ValueError(f"model.init_std must be > 0 for model.init=gaussian, got {std}")
    if scheme in ("default", "uniform"):
        return module  # uniform covers the whole model: see uniform_all

    def visit(sub: nn.Module, hidden_size: int | None) -> None:
        own = getattr(sub, "hidden_size", None)
        hidden_size = own if isinstance(own, int) else hidden_size
        for param in sub.parameters(recurse=False):
            if param.dim() >= 2:
                with torch.no_grad():
                    for block in _blocks(param, hidden_size):
                        _fill(block, scheme, std)
        for child in sub.children():
            visit(child, hidden_size)

    visit(module, None)
    return module


def uniform_all(model: nn.Module, bound: float) -> nn.Module:
    """Every parameter U(-bound, bound); embedding padding rows back to zero."""
    if not (bound > 0):
        raise ValueError(f"model.init_range must be > 0 for model.init=uniform, got {bound}")
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(-bound, bound)
        for sub in model.modules():
            if isinstance(sub, nn.Embedding) and sub.padding_idx is not None:
                sub.weight[sub.padding_idx].zero_()
    return model
