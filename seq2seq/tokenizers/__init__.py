"""Tokenizers: trained on the training split, saved inside checkpoints, reversible.

Every tokenizer reserves the same four special ids so that models, losses and
search never need to ask which is which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from seq2seq import registry

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")


class Tokenizer(Protocol):
    vocab_size: int

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, **options: Any) -> Tokenizer: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def pieces(self, ids: list[int]) -> list[str]: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Tokenizer: ...

    def save(self, directory: Path) -> None: ...


def train_tokenizer(kind: str, texts: list[str], vocab_size: int, **options: Any) -> Tokenizer:
    cls = registry.load("seq2seq.tokenizers", kind)
    registry.validate_options(
        "tokenizer", kind, cls.train, options, fixed=(texts, vocab_size), source="tokenizer.options"
    )
    return cls.train(texts, vocab_size, **options)


def tokenizer_to_state(kind: str, tokenizer: Tokenizer) -> dict[str, Any]:
    return {"type": kind, "state": tokenizer.state_dict()}


def tokenizer_from_state(saved: dict[str, Any]) -> Tokenizer:
    cls = registry.load("seq2seq.tokenizers", saved["type"])
    return cls.from_state_dict(saved["state"])
