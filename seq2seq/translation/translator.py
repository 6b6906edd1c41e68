"""Loading a trained model and translating lists of lines, in order, one output per input."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.checkpoint import load_checkpoint
from seq2seq.data.batching import source_tensor
from seq2seq.hardware import autocast
from seq2seq.nn.ensemble import Ensemble
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import Hypothesis, generate
from seq2seq.tokenizers import Tokenizer, tokenizer_from_state

log = logging.getLogger(__name__)


@dataclass
class Translator:
    model: Seq2Seq | Ensemble
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    config: dict[str, Any] = field(default_factory=dict)
    max_source_tokens: int = 250
    precision: str = "fp32"  # fp32 | bf16 (autocast where the hardware has native bf16)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> Translator:
        """One checkpoint file or run directory (a list of them: see from_checkpoints)."""
        if isinstance(path, (list, tuple)):
            return cls.from_checkpoints(path, device=device)
        payload = load_checkpoint(path)
        model = _load_model(payload, device)
        tokenizers = payload["tokenizers"]
        return cls(
            model,
            tokenizer_from_state(tokenizers["src"]),
            tokenizer_from_state(tokenizers["tgt"]),
            payload.get("config", {}),
        )

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | Path], device: str = "cpu") -> Translator:
        """An ensemble of checkpoints (one path: exactly from_checkpoint).

        Tokenizers and config come from the first checkpoint; every member must use
        the same source and target vocabularies (a clear error names the odd one).
        """
        paths = list(paths)
        if not paths:
            raise ValueError("no checkpoint given")
        if len(paths) == 1:
            return cls.from_checkpoint(paths[0], device=device)
        first = load_checkpoint(paths[0])
        src_tok = tokenizer_from_state(first["tokenizers"]["src"])
        tgt_tok = tokenizer_from_state(first["tokenizers"]["tgt"])
        models = [_load_model(first, device)]
        for path in paths[1:]:
            payload = load_checkpoint(path)
            for side, reference in (("src", src_tok), ("tgt", tgt_tok)):
                _check_same_vocabulary(
                    (first["tokenizers"][side]["type"], reference),
                    payload["tokenizers"][side],
                    side,
                    paths[0],
                    path,
                )
            models.append(_load_model(payload, device))
        return cls(Ensemble(models).eval(), src_tok, tgt_tok, first.get("config", {}))

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
            with autocast(device, self.precision):
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


def _load_model(payload: dict[str, Any], device: str) -> Seq2Seq:
    model = Seq2Seq(ModelSpec(**payload["model_spec"]))
    model.load_state_dict(payload["model"])
    return model.to(device).eval()


def _vocabulary(tokenizer: Tokenizer) -> list[str]:
    return list(tokenizer.pieces(list(range(tokenizer.vocab_size))))


def _check_same_vocabulary(
    reference: tuple[str, Tokenizer],
    saved: dict[str, Any],
    side: str,
    first: str | Path,
    other: str | Path,
) -> None:
    """Ensemble members must agree on every token id of the given side."""
    what = "source" if side == "src" else "target"
    kind, reference = reference
    if saved["type"] != kind:
        raise ValueError(
            f"cannot ensemble {other} with {first}: their {what} tokenizers differ "
            f"('{saved['type']}' vs '{kind}'). Ensemble members must be trained with the same "
            "tokenizers."
        )
    tokenizer = tokenizer_from_state(saved)
    if tokenizer.vocab_size != reference.vocab_size:
        raise ValueError(
            f"cannot ensemble {other} with {first}: their {what} vocabularies differ in size "
            f"({tokenizer.vocab_size} vs {reference.vocab_size}). Ensemble members must be "
            "trained with the same tokenizers."
        )
    if _vocabulary(tokenizer) != _vocabulary(reference):
        raise ValueError(
            f"cannot ensemble {other} with {first}: their {what} tokenizers map ids to different "
            "pieces. Ensemble members must be trained with the same tokenizers."
        )


def clean_line(line: str) -> str:
    """Control characters (tabs, NUL, stray CR…) become spaces; output must stay one line."""
    if line.isprintable():
        return line
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in line)
