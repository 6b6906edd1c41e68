"""Exported model folders: a trained translation model to share, loaded without pickle.

A folder holds `model.safetensors` (the weights), `config.json` (the model's shape, its
language pair, the training config, and the scores measured at export), `tokenizer/`
(the files `seq2seq-tokenize` reads, as in a run folder), `shortlist.safetensors` (the
decoding shortlist, when the model has one) and `README.md`, a model card.
It is what the Hugging Face Hub expects of a model repository, and everything in it is
plain data: loading runs no code from the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq import __version__
from seq2seq.checkpoint import CheckpointError
from seq2seq.tokenizers import Tokenizer
from seq2seq.tokenizers.files import load_tokenizers, save_tokenizers
from seq2seq.translation.int8_weights import WEIGHT_FORMATS, dequantize_weights, quantize_weights

if TYPE_CHECKING:
    import numpy as np
    import torch

    from seq2seq.nn.model import Seq2Seq

FORMAT = "seq2seq-model/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SHORTLIST_NAME = "shortlist.safetensors"
TOKENIZER_DIR = "tokenizer"


def is_model_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()


def write_model_folder(
    folder: str | Path,
    model: Seq2Seq,
    tokenizers: tuple[str, Tokenizer, Tokenizer],
    config: dict[str, Any],
    metadata: dict[str, Any],
    shortlist: dict[str, torch.Tensor] | None = None,
    weights: str = "fp32",
) -> Path:
    """Write weights, config.json, tokenizer/ and the shortlist (if any) into `folder`
    (the card is the caller's).

    `tokenizers` is (registered type, source, target); `config` the training config;
    `metadata` what the model card shows (scores, the training command, the run summary);
    `weights` fp32, or int8 for matrices stored as int8 (seq2seq.translation.int8_weights).
    """
    from safetensors import numpy as safetensors_numpy
    from safetensors.torch import save_file, save_model

    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights {weights!r}: expected one of {', '.join(WEIGHT_FORMATS)}")

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    # save_model keeps one copy of tied tensors (shared embeddings), which safetensors needs.
    path = folder / WEIGHTS_NAME
    save_model(model, str(path), metadata={"format": FORMAT})
    if weights == "int8":  # quantized from what save_model wrote: one copy of tied tensors
        tensors = quantize_weights(safetensors_numpy.load_file(path))
        safetensors_numpy.save_file(tensors, path, metadata={"format": FORMAT})
    written = [path]
    if shortlist is not None:
        save_file({k: v.contiguous() for k, v in shortlist.items()}, folder / SHORTLIST_NAME)
        written.append(folder / SHORTLIST_NAME)
    for path in written:  # safetensors writes private files; these are to share
        path.chmod(0o666 & ~umask)
    kind, src, tgt = tokenizers
    save_tokenizers(folder / TOKENIZER_DIR, kind, src, tgt)
    data = config.get("data", {})
    description = {
        "format": FORMAT,
        "seq2seq_version": __version__,
        "source_language": data.get("src_lang"),
        "target_language": data.get("tgt_lang"),
        "model_spec": model.spec.to_dict(),
        "weights": weights,
        "metadata": metadata,
        "training_config": config,
    }
    (folder / CONFIG_NAME).write_text(
        json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return folder


def read_description(folder: str | Path) -> dict[str, Any]:
    """The content of a folder's config.json, checked to be a seq2seq model's. Reading it
    needs no torch: the torch-free runtime (seq2seq.runtime) starts here too."""
    path = Path(folder) / CONFIG_NAME
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable model description ({exc})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a seq2seq model folder's config.json (expected format {FORMAT})"
        )
    return description


def read_folder_tokenizers(folder: str | Path) -> tuple[Tokenizer, Tokenizer]:
    """The folder's (source, target) tokenizers."""
    try:
        return load_tokenizers(Path(folder) / TOKENIZER_DIR)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{Path(folder) / TOKENIZER_DIR}: {exc}") from None


def read_model_folder(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[Seq2Seq, Tokenizer, Tokenizer, dict[str, Any]]:
    """(model, source tokenizer, target tokenizer, config.json's content) of a folder."""
    from seq2seq.nn.model import ModelSpec, Seq2Seq

    folder = Path(folder)
    description = read_description(folder)
    weights = read_tensors(folder / WEIGHTS_NAME)
    try:
        model = Seq2Seq(ModelSpec(**description["model_spec"]))
        _load_state(model, weights)
    except (KeyError, TypeError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"{folder / WEIGHTS_NAME} does not hold the weights {folder / CONFIG_NAME} "
            f"describes ({type(exc).__name__}: {exc})"
        ) from None
    src, tgt = read_folder_tokenizers(folder)
    return model.to(device).eval(), src, tgt, description


def int8_round_trip(model: torch.nn.Module) -> None:
    """Give `model` the weights an int8 folder of it stores, in place, so that what it
    scores before export is what the folder will translate with."""
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    rounded = dequantize_weights(quantize_weights(state), "the model")
    _load_state(model, rounded)


def read_shortlist(folder: str | Path) -> dict[str, torch.Tensor] | None:
    """The folder's shortlist tensors, or None if it has none."""
    import torch

    path = Path(folder) / SHORTLIST_NAME
    if not path.is_file():
        return None
    return {k: torch.from_numpy(v) for k, v in read_tensors(path).items()}


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file's tensors by name, int8 matrices dequantized to float32. Tied
    weights are stored once, under one of their names. No torch: the numpy runtime reads
    folders here too."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dequantize_weights(load_file(path), str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def _load_state(model: torch.nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Copy `weights` into `model`; a name missing from the file is fine only where it is
    tied to one that is there (the same tensor under two names)."""
    import torch

    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False
    )
    state = model.state_dict()
    loaded = {state[k].data_ptr() for k in weights if k in state}
    missing = [k for k in missing if state[k].data_ptr() not in loaded]
    if missing or unexpected:
        raise RuntimeError(f"missing tensors {missing}, unexpected tensors {unexpected}")
