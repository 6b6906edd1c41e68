"""A trained tokenizer pair on disk: the files of a run's ``tokenizer/`` folder, read back.

Each side's own ``save()`` writes readable files (``src/``, ``tgt/``: a vocabulary, a
model); ``tokenizers.json`` holds both states with their type, so any registered
tokenizer can be loaded again exactly, without a checkpoint.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from seq2seq.tokenizers import Tokenizer, tokenizer_from_state, tokenizer_to_state

STATE_NAME = "tokenizers.json"


def json_safe(value: Any) -> Any:
    """`value` with every bytes object (a sentencepiece model) as {"__bytes__": base64},
    so that tokenizer states can be written as JSON."""
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def from_json_safe(value: Any) -> Any:
    """The inverse of json_safe."""
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


def save_tokenizers(folder: str | Path, kind: str, src: Tokenizer, tgt: Tokenizer) -> Path:
    """Write ``folder/src``, ``folder/tgt`` and ``folder/tokenizers.json``; return the json."""
    folder = Path(folder)
    src.save(folder / "src")
    tgt.save(folder / "tgt")
    states = {
        "joint": src is tgt,
        "src": tokenizer_to_state(kind, src),
        "tgt": tokenizer_to_state(kind, tgt),
    }
    path = folder / STATE_NAME
    path.write_text(json.dumps(json_safe(states)) + "\n", encoding="utf-8")
    return path


def load_tokenizers(folder: str | Path) -> tuple[Tokenizer, Tokenizer]:
    """The (src, tgt) tokenizers saved by :func:`save_tokenizers` (one object when joint)."""
    path = Path(folder) / STATE_NAME
    try:
        states = from_json_safe(json.loads(path.read_text(encoding="utf-8")))
        src = tokenizer_from_state(states["src"])
        tgt = src if states.get("joint") else tokenizer_from_state(states["tgt"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a tokenizer file written by seq2seq ({exc})") from None
    return src, tgt


def tokenizer_states(states: dict[str, Any]) -> tuple[Tokenizer, Tokenizer]:
    """The (src, tgt) tokenizers of a checkpoint's ``tokenizers`` entry."""
    return tokenizer_from_state(states["src"]), tokenizer_from_state(states["tgt"])
