"""seq2seq: recurrent neural machine translation with pluggable cells, tokenizers,
decoders and search strategies.

The public Python API, importable from here::

    import seq2seq

    translator = seq2seq.Translator.from_pretrained("runs/en_de")
    print(translator.translate("A man is riding a bike.", search="beam", beam_size=5).text)

    config = seq2seq.load_config("en_de", ["trainer.max_time=12"])
    summary = seq2seq.train_model(config, "runs/en_de_py")

Names are imported on first use, so `import seq2seq` stays fast for the commands.
This module sits on top of the package, beside the commands: it only re-exports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "Translator": "seq2seq.translation.translator",
    "NumpyTranslator": "seq2seq.runtime.translator",
    "Translation": "seq2seq.translation.translator",
    "ReferenceScore": "seq2seq.translation.translator",
    "load_config": "seq2seq.config",
    "ConfigError": "seq2seq.config",
    "train_model": "seq2seq.commands.train",
    "Seq2Seq": "seq2seq.nn.model",
    "ModelSpec": "seq2seq.nn.model",
    "generate": "seq2seq.search",
    "Hypothesis": "seq2seq.search",
    "CheckpointError": "seq2seq.checkpoint",
    "PluginError": "seq2seq.registry",
}

__all__ = [
    "__version__",
    "CheckpointError",
    "ConfigError",
    "Hypothesis",
    "ModelSpec",
    "NumpyTranslator",
    "PluginError",
    "ReferenceScore",
    "Seq2Seq",
    "Translation",
    "Translator",
    "generate",
    "load_config",
    "train_model",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time names load lazily
    from seq2seq.checkpoint import CheckpointError
    from seq2seq.commands.train import train_model
    from seq2seq.config import ConfigError, load_config
    from seq2seq.nn.model import ModelSpec, Seq2Seq
    from seq2seq.registry import PluginError
    from seq2seq.runtime.translator import NumpyTranslator
    from seq2seq.search import Hypothesis, generate
    from seq2seq.translation.translator import ReferenceScore, Translation, Translator


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
