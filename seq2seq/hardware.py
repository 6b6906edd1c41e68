"""Process-wide CPU settings that make training and decoding faster without changing results.

glibc returns every large block (over 128 KiB by default, which is most activations
and gradients) to the kernel when it is freed, so the next allocation of that size
page-faults on fresh zeroed memory. On a 2-core CPU that made element-wise ops on
logits 6× slower than the arithmetic (measured: 16.6 ms vs 2.7 ms for 1088×8000
floats). Raising the mmap and trim thresholds keeps those blocks in the heap for
reuse. Numbers are unchanged: only where memory comes from changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30  # glibc caps the mmap threshold at 32 MiB on 64-bit anyway


def tune_allocator() -> bool:
    """Keep freed large blocks for reuse (glibc only); returns whether it applied."""
    if os.environ.get("SEQ2SEQ_NO_MALLOPT"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, musl): nothing to do
    applied = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
    )
    if applied:
        log.debug("allocator: large blocks kept for reuse (mallopt)")
    return applied


PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DEVICE_TYPES = ("cpu", "cuda", "mps")  # what the models run on; cuda:N names one GPU


def available_devices() -> list[str]:
    """The devices a model can run on here: cpu, then cuda and each cuda:N, then mps."""
    import torch

    found = ["cpu"]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count:
        found += ["cuda", *(f"cuda:{i}" for i in range(count))]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def check_device(name: str, key: str) -> torch.device:
    """The device `name` as a torch.device, once it is known to exist on this machine.

    Checked before a model loads, so that a wrong --device (`key`) is one ValueError
    naming the problem and the devices available here, not torch's failure mid-load.
    """
    import torch

    available = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(
            f"{key} {name}: unknown device (expected cpu, cuda, cuda:N or mps); "
            f"available: {available}"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        problem = "no CUDA GPU is available here (torch reports none)"
    elif device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        problem = f"this machine has {torch.cuda.device_count()} CUDA GPU(s)"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        problem = "no Apple GPU (MPS) is available here"
    else:
        return device
    raise ValueError(f"{key} {name}: {problem}; available: {available}")


# CPU flags (as /proc/cpuinfo names them) of bf16 matrix products in hardware, and of the
# AVX-512 subset on which oneDNN emulates bf16 (correct, but slower than fp32).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
EMULATED_BF16_FLAGS = frozenset({"avx512bw", "avx512vl", "avx512dq"})


def cpuinfo_value(keys: tuple[str, ...], cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first /proc/cpuinfo line whose key is one of `keys`, or None."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(keys):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=4)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The instruction-set flags of this CPU, or None where /proc/cpuinfo is not there."""
    value = cpuinfo_value(("flags", "Features"), cpuinfo)
    return None if value is None else frozenset(value.split())


@functools.lru_cache(maxsize=4)
def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """ "GenuineIntel", "AuthenticAMD", ...: or None where /proc/cpuinfo does not say."""
    return cpuinfo_value(("vendor_id",), cpuinfo)


def available_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """ "2 cores of AMD EPYC (AVX2)": what a measured number must be reported with."""
    import platform

    name = cpuinfo_value(("model name",), cpuinfo) or platform.processor() or platform.machine()
    flags = cpu_flags(cpuinfo) or frozenset()
    best = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]
    return f"{available_cores()} cores of {name}" + (f" ({best[0].upper()})" if best else "")


def cpu_bf16(flags: frozenset[str] | None = None) -> str:
    """How this CPU runs bf16 matrix products: "native", "emulated" or "none". `flags`
    defaults to this machine's; without /proc/cpuinfo, torch's oneDNN check decides."""
    import torch

    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "emulated" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "none"
    if flags & NATIVE_BF16_FLAGS:
        return "native"
    return "emulated" if EMULATED_BF16_FLAGS <= flags else "none"


# OpenBLAS core types (OPENBLAS_CORETYPE) whose kernels stop at AVX2 or below
PRE_AVX512_BLAS_CORES = frozenset(
    "prescott core2 penryn dunnington nehalem atom sandybridge haswell zen barcelona "
    "bobcat bulldozer piledriver steamroller excavator".split()
)


def blas_pinned_below_cpu(
    environ: dict[str, str] | None = None, flags: frozenset[str] | None = None
) -> str | None:
    """Why numpy's matrix products run slower than this CPU allows, or None.

    OPENBLAS_CORETYPE overrides OpenBLAS's own choice of kernel when numpy loads it;
    naming a pre-AVX-512 core on an AVX-512 CPU halves the numpy runtime's products
    (measured on an AVX-512 AMD EPYC: 190 against 380 GFLOP/s, 640×256 by 256×8,000).
    """
    environ = os.environ if environ is None else environ
    core = environ.get("OPENBLAS_CORETYPE", "").strip()
    flags = (cpu_flags() or frozenset()) if flags is None else flags
    if core.lower() not in PRE_AVX512_BLAS_CORES or "avx512f" not in flags:
        return None
    return (
        f"OPENBLAS_CORETYPE={core} holds numpy's matrix products to kernels older than "
        "this CPU's AVX-512, at about half their speed; unset it to translate faster"
    )


def autocast(device: torch.device | str, precision: str):
    """Mixed precision for the forward pass: `bf16` autocasts matrix products to
    bfloat16 (fast on CPUs with AMX and on recent GPUs), `fp16` to float16 (GPUs; training
    then needs the gradient scaler of `grad_scaler`); `fp32` changes nothing."""
    import torch

    if precision == "auto":
        raise ValueError("precision 'auto' must be resolved first (resolve_precision)")
    check_precision(device, precision, "precision")
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: torch.device | str, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training (small gradients would underflow to zero in float16);
    a disabled scaler, which changes nothing, for the other precisions."""
    import torch

    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")


def flatten_rnn_weights(module: torch.nn.Module) -> None:
    """cuDNN's fused RNN kernels want each RNN's weights in one contiguous block; moving,
    loading or broadcasting weights can break it up (torch then warns and copies them on
    every call). No effect on CPU."""
    import torch

    for child in module.modules():
        if isinstance(child, torch.nn.RNNBase):
            child.flatten_parameters()


def bf16_unsupported_reason(
    device: torch.device | str, flags: frozenset[str] | None = None
) -> str | None:
    """Why bf16 cannot run on `device`, or None if it can (natively or emulated)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bf16 support"
    if device.type == "cpu" and cpu_bf16(flags) == "none":
        return (
            f"this CPU has no bf16 (torch reports {torch.backends.cpu.get_cpu_capability()}; "
            "bf16 needs AVX512-BF16 or AMX, or at least AVX-512 to emulate it): torch's fused "
            "LSTM/GRU kernels refuse bf16 here"
        )
    return None


def resolve_precision(
    device: torch.device | str, precision: str, key: str, flags: frozenset[str] | None = None
) -> str:
    """The precision to run at: `precision` itself once checked against the hardware, or
    for "auto" bf16 where `device` has native bf16 and fp32 elsewhere; the choice and its
    reason are logged. `flags` (CPU flags) defaults to this machine's."""
    import torch

    device = torch.device(device)
    if precision != "auto":
        check_precision(device, precision, key, flags)
        if precision == "bf16" and device.type == "cpu" and cpu_bf16(flags) == "emulated":
            log.warning(
                "%s=bf16: this CPU has AVX-512 but no native bf16 (AVX512-BF16 or AMX), so "
                "bf16 is emulated and likely slower than fp32",
                key,
            )
        return precision
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        why = "this GPU has native bf16" if native else "this GPU has no bf16"
    else:
        native = cpu_bf16(flags) == "native"
        why = (
            "this CPU has native bf16 (AVX512-BF16 or AMX)"
            if native
            else "this CPU has no native bf16 (AVX512-BF16 or AMX)"
        )
    chosen = "bf16" if native else "fp32"
    log.info("%s=auto: %s, because %s", key, chosen, why)
    return chosen


def check_precision(
    device: torch.device | str, precision: str, key: str, flags: frozenset[str] | None = None
) -> None:
    """A ValueError naming `key` when `device` cannot run `precision` ("auto" always can)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"{key} must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError(
            f"{key}=fp16 needs a CUDA GPU (float16 with a gradient scaler); this run is on "
            f"{torch.device(device)}. Use {key}=fp32, or bf16 where the hardware has it."
        )
    if precision == "bf16":
        reason = bf16_unsupported_reason(device, flags)
        if reason:
            raise ValueError(f"{key}=bf16: {reason}. Use {key}=fp32 or {key}=auto.")
