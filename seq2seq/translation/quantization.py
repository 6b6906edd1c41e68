"""int8 decoding on CPUs: the model's linear layers (the output layer over the whole
target vocabulary above all, and the attention's projections) become torch's dynamically
quantized ones: int8 weights, activations quantized per batch. The recurrent cells stay
fp32 (they run torch's fused cell kernels on their float weights).

Only for translation: the quantized model cannot train, and its outputs differ from the
fp32 model's by rounding (tests bound the difference; the bench measures speed and BLEU).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZATIONS = ("none", "int8")


def quantize_int8(model: nn.Module) -> nn.Module:
    """The model with every nn.Linear dynamically quantized to int8 (a copy; CPU only)."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"int8 quantization runs on the CPU; the model is on {device}")
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "qnnpack")):
        raise ValueError(f"this torch build has no int8 CPU kernels (engines: {engines})")
    with warnings.catch_warnings():  # torch 2.13 marks quantized tensors as deprecated
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
