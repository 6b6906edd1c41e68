"""Adam, with torch's fused kernel where the device has one, and optimizer states that
resume under either setting."""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


def fused_adam_supported(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch has a fused Adam kernel for these parameters' devices and dtypes."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        devices = set(_get_fused_kernels_supported_devices())
    except ImportError:  # older torch: CUDA only
        devices = {"cuda"}
    return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)


def make_adam(parameters, lr: float, fused: bool = True) -> torch.optim.Adam:
    """Adam, with torch's fused kernel (one kernel for all parameters, several times faster
    than the per-tensor loop on CPU) when `fused` and the parameters' device supports it."""
    params = list(parameters)
    if fused and fused_adam_supported(params):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError) as exc:  # an unsupported combination
            log.warning("fused Adam unavailable (%s); using the default implementation", exc)
    return torch.optim.Adam(params, lr=lr)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state, keeping this optimizer's fused/foreach choice: a
    checkpoint written with (or without) the fused kernel resumes under either setting."""
    groups = []
    for saved, current in zip(state["param_groups"], optimizer.param_groups, strict=True):
        group = dict(saved)
        for key in ("fused", "foreach"):
            if key in current:
                group[key] = current[key]
        groups.append(group)
    # The flags are set before loading: they decide where `step` goes (the fused kernel
    # wants it as float32 beside the parameters).
    optimizer.load_state_dict({**state, "param_groups": groups})
