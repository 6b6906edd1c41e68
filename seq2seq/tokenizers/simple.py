"""Character and whitespace-word tokenizers: transparent baselines and the char LM's input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from seq2seq.tokenizers import EOS_ID, SPECIALS, UNK_ID


class VocabularyTokenizer:
    """Maps units (characters or words) to ids over a frequency-ranked vocabulary."""

    separator = ""

    def __init__(self, units: list[str]) -> None:
        self.units = list(SPECIALS) + [u for u in units if u not in SPECIALS]
        self.index = {u: i for i, u in enumerate(self.units)}
        self.vocab_size = len(self.units)

    @staticmethod
    def split(text: str) -> list[str]:
        raise NotImplementedError

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, min_count: int = 1) -> VocabularyTokenizer:
        counts = Counter(unit for text in texts for unit in cls.split(text))
        ranked = sorted(
            (u for u, c in counts.items() if c >= min_count), key=lambda u: (-counts[u], u)
        )
        return cls(ranked[: max(0, vocab_size - len(SPECIALS))])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(u, UNK_ID) for u in self.split(text)]

    def decode(self, ids: list[int]) -> str:
        return self.separator.join(self.units[i] for i in ids if i > EOS_ID or i == UNK_ID)

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.units[i] for i in ids]

    def state_dict(self) -> dict[str, Any]:
        return {"units": self.units[len(SPECIALS) :]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> VocabularyTokenizer:
        return cls(list(state["units"]))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "vocab.txt", "w", encoding="utf-8") as f:
            f.writelines(repr(u)[1:-1] + "\n" for u in self.units)


class CharTokenizer(VocabularyTokenizer):
    """Characters as tokens: no unknown words, long sequences."""

    separator = ""

    @staticmethod
    def split(text: str) -> list[str]:
        return list(text)


class WordTokenizer(VocabularyTokenizer):
    """Whitespace-separated words as tokens, most frequent first; the rest become <unk>."""

    separator = " "

    @staticmethod
    def split(text: str) -> list[str]:
        return text.split()
