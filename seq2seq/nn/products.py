"""float32 matrix products through oneDNN on CPUs where MKL runs its slower kernels.

torch multiplies float32 matrices on a CPU with MKL, which takes its slower code paths
on AMD CPUs: on 2 cores of an AVX-512 AMD EPYC, 1,008 × 256 by 256 × 8,000 ran at 145
GFLOP/s, and at 303 through oneDNN's linear, which torch also ships (bf16 products go
there already). The output layer's three products are 40% of an fp32 training update
of the reference model there, so on AMD CPUs they take oneDNN. Elsewhere, and for any
other dtype or device, `linear` is the plain product. The two differ only by rounding
(tested).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from seq2seq.hardware import cpu_vendor


@functools.lru_cache(maxsize=1)
def onednn_fp32() -> bool:
    """Whether CPU float32 products go through oneDNN (an AMD CPU, and a torch with it)."""
    return (
        cpu_vendor() == "AuthenticAMD"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T (+ bias): x [N, K], weight [M, K] (either may be a transposed view),
    bias [M] → [N, M]."""
    if (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and (bias is None or bias.dtype == torch.float32)
        and x.numel() > 0  # oneDNN has no primitive for empty products
        and weight.numel() > 0
        and onednn_fp32()
    ):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())
