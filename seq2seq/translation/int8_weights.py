"""int8 weights for model folders: a quarter of the size on disk and over the network.

Every matrix (embeddings, recurrent weights, attention and output layers) is stored as
int8 with one float32 scale per row, symmetric: row ≈ q · scale with q in [-127, 127] and
scale = max |row| / 127, so each weight is off by at most scale / 2. Biases and other
vectors stay float32. Loading turns the matrices back into float32, so both engines
decode a quantized folder with their ordinary float kernels; only the weights' values
differ from the fp32 folder's. Quantizing the dequantized weights gives the same int8
values and scales again, so a quantized folder exported anew is unchanged.

numpy only: the torch-free runtime loads these folders too.
"""

from __future__ import annotations

import numpy as np

WEIGHT_FORMATS = ("fp32", "int8")
SCALE_SUFFIX = ".int8_scale"  # the scales of int8 tensor NAME are stored as NAME + this
LEVELS = np.float32(127)


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[rows, cols] float → (q int8 [rows, cols], scale float32 [rows])."""
    matrix = matrix.astype(np.float32, copy=False)
    scale = (np.abs(matrix).max(axis=1) / LEVELS).astype(np.float32)
    divisor = np.where(scale > 0, scale, np.float32(1))[:, None]  # an all-zero row stays 0
    q = np.clip(np.rint(matrix / divisor), -LEVELS, LEVELS).astype(np.int8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 [rows, cols] matrix that (q, scale) stand for."""
    return q.astype(np.float32) * scale[:, None]


def quantize_weights(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A state's matrices as int8 and their row scales; everything else as it was."""
    out: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        if tensor.ndim == 2 and np.issubdtype(tensor.dtype, np.floating):
            out[name], out[name + SCALE_SUFFIX] = quantize_rows(tensor)
        else:
            out[name] = tensor
    return out


def dequantize_weights(tensors: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The float32 state a weights file stands for (an fp32 file comes back as it is).

    `source` names the file in the message when an int8 tensor has no fitting scales.
    """
    out: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if tensor.dtype == np.int8:
            scale = tensors.get(name + SCALE_SUFFIX)
            if scale is None or tensor.ndim != 2 or scale.shape != (tensor.shape[0],):
                raise ValueError(f"{source}: int8 tensor '{name}' has no scale for each row")
            out[name] = dequantize_rows(tensor, scale)
        else:
            out[name] = tensor
    return out
