"""Loading a trained model and translating lists of lines, in order, one output per input."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint
from .data.batching import source_tensor
from .model import ModelSpec, Seq2Seq
from .search import Hypothesis, generate
from .tokenizers import Tokenizer, tokenizer_from_state

log = logging.getLogger(__name__)


@dataclass
class Translator:
    model: Seq2Seq
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    config: dict[str, Any] = field(default_factory=dict)
    max_source_tokens: int = 250

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> Translator:
        payload = load_checkpoint(path)
        model = Seq2Seq(ModelSpec(**payload["model_spec"]))
        model.load_state_dict(payload["model"])
        model.to(device).eval()
        tokenizers = payload["tokenizers"]
        return cls(
            model,
            tokenizer_from_state(tokenizers["src"]),
            tokenizer_from_state(tokenizers["tgt"]),
            payload.get("config", {}),
        )

    def _encode(self, line: str) -> list[int]:
        ids = self.src_tokenizer.encode(clean_line(line))
        if len(ids) > self.max_source_tokens:
            log.warning(
                "source line of %d tokens truncated to %d", len(ids), self.max_source_tokens
            )
            ids = ids[: self.max_source_tokens]
        return ids

    def translate(
        self,
        lines: Iterable[str],
        search: str = "greedy",
        batch_size: int = 64,
        **search_options: Any,
    ) -> list[list[Hypothesis]]:
        """Hypotheses for each line, in input order; an empty line gets one empty hypothesis."""
        encoded = [self._encode(line) for line in lines]
        results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in encoded]
        todo = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
        device = next(self.model.parameters()).device
        self.model.eval()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            src, lengths = source_tensor([encoded[i] for i in chunk])
            hyps = generate(
                self.model, src.to(device), lengths.to(device), search, **search_options
            )
            for index, sentence_hyps in zip(chunk, hyps, strict=True):
                results[index] = sentence_hyps or [Hypothesis([], float("-inf"))]
        return results

    def translate_text(self, lines: list[str], **options: Any) -> list[str]:
        """The best translation of each line, detokenized."""
        return [self.detokenize(h[0]) for h in self.translate(lines, **options)]

    def detokenize(self, hyp: Hypothesis) -> str:
        # Untrained or odd outputs can decode to bare "▁" pieces: no stray edge spaces.
        return clean_line(self.tgt_tokenizer.decode(hyp.tokens)).strip()


def clean_line(line: str) -> str:
    """Control characters (tabs, NUL, stray CR…) become spaces; output must stay one line."""
    if line.isprintable():
        return line
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in line)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
