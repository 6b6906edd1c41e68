"""Tokenizers (`seq2seq.tokenizers`): the contract is `seq2seq.contracts.Tokenizer`.

Every tokenizer reserves the same four special ids so that models, losses and
search never need to ask which is which.
"""

from __future__ import annotations

from typing import Any

from seq2seq import registry
from seq2seq.contracts import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Tokenizer

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SPECIALS",
    "UNK_ID",
    "Tokenizer",
    "tokenizer_from_state",
    "tokenizer_to_state",
    "train_tokenizer",
]


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
