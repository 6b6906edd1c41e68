"""Text in, text out: how a line becomes source ids, and what a translation gives back.
Shared by the torch translator and the torch-free runtime, so both read and write the
very same lines."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from seq2seq.search import BATCH_SENTENCES, Hypothesis
from seq2seq.tokenizers import EOS_ID, SPECIALS, Tokenizer

EOS_LABEL = SPECIALS[EOS_ID]  # the label of the EOS row and column of attention matrices

log = logging.getLogger("seq2seq.translation")


def source_ids(tokenizer: Tokenizer, line: str, limit: int, warn: bool = True) -> list[int]:
    """The line's source ids, cut to `limit` tokens (with a warning, unless `warn` is off:
    a line already warned about)."""
    ids = tokenizer.encode(clean_line(line))
    if len(ids) > limit:
        if warn:
            log.warning("source line of %d tokens truncated to %d", len(ids), limit)
        ids = ids[:limit]
    return ids


@dataclass
class Translation:
    """One input line's translation.

    `score` is the search's score of the text: its log-probability (beam search:
    length-normalised as the beam ranks it). `tokens` are the target subword pieces;
    `alignment` (when asked for) pairs (source token, target token), 0-based, as
    `seq2seq-translate --print-alignment` writes them; `nbest` (when more than one was
    asked for) holds every hypothesis, best first, this one included. `attention` (when
    asked for) is the soft attention, `[T + 1][S + 1]` weights: one row per target token
    then EOS (`target_tokens`), one column per source token then EOS (`source_tokens`);
    each row sums to 1. `confidence` (when asked for) is the model's mean log-probability
    per target token (EOS included) of this text: near 0 when it is sure, lower out of
    its depth; `flags` name what makes the source unlike the training data
    (`unknown_source`, `long_source`: see `Translator.source_flags`).
    """

    text: str
    score: float
    tokens: list[str]
    alignment: list[tuple[int, int]] | None = None
    nbest: list[Translation] | None = None
    source_tokens: list[str] | None = None
    attention: list[list[float]] | None = None
    confidence: float | None = None
    flags: list[str] | None = None

    @property
    def target_tokens(self) -> list[str]:
        """The rows of `attention`: the target pieces, then the EOS label."""
        return [*self.tokens, EOS_LABEL]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: text and score always; alignment, attention (with its
        source_tokens and target_tokens) and nbest when present."""
        out: dict[str, Any] = {"text": self.text, "score": self.score}
        if self.alignment is not None:
            out["alignment"] = [list(pair) for pair in self.alignment]
        if self.attention is not None:
            out["source_tokens"] = list(self.source_tokens or [])
            out["target_tokens"] = self.target_tokens
            out["attention"] = self.attention
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.flags is not None:
            out["flags"] = list(self.flags)
        if self.nbest is not None:
            out["nbest"] = [h.to_dict() for h in self.nbest]
        return out


class LineTranslator:
    """What every translator shares, whatever runs its model: a line's source ids, the
    order lines are batched in, and Translation objects from hypotheses. Subclasses set
    `src_tokenizer`, `tgt_tokenizer` and `max_source_tokens`, and define `hypotheses`."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    max_source_tokens: int
    # each engine searches its own way: (lines, search, batch_size, **options) → per
    # line, its hypotheses, best first (an empty line gets one empty hypothesis)
    hypotheses: Callable[..., list[list[Hypothesis]]]

    def _encode(self, line: str) -> list[int]:
        return source_ids(self.src_tokenizer, line, self.max_source_tokens)

    def _source_ids(self, line: str) -> list[int]:
        """The ids `_encode` gives, without its truncation warning (given once already)."""
        return source_ids(self.src_tokenizer, line, self.max_source_tokens, warn=False)

    def _search(
        self, texts: str | Sequence[str], search: str, nbest: int, batch_size: int, options
    ) -> tuple[list[str], list[list[Hypothesis]]]:
        """`translate`'s lines and their hypotheses (nbest > 1 asks the search for as many)."""
        lines = [texts] if isinstance(texts, str) else list(texts)
        if nbest != 1:
            options["nbest"] = nbest
        return lines, self.hypotheses(lines, search=search, batch_size=batch_size, **options)

    def translate(
        self,
        texts: str | Sequence[str],
        *,
        search: str = "greedy",
        nbest: int = 1,
        batch_size: int = BATCH_SENTENCES,
        **search_options: Any,
    ) -> Translation | list[Translation]:
        """Translate one text (a Translation) or a list of texts (a list, in order);
        `search_options` are the strategy's (beam_size, length_penalty, …)."""
        _, hyps = self._search(texts, search, nbest, batch_size, search_options)
        results = self.translations(hyps, nbest=nbest)
        return results[0] if isinstance(texts, str) else results

    @staticmethod
    def batches(encoded: Sequence[list[int]], batch_size: int) -> Iterator[list[int]]:
        """The indices of the non-empty sources, shortest first, `batch_size` at a time:
        sentences of one length decode together, so no batch waits on a long one."""
        todo = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
        for start in range(0, len(todo), batch_size):
            yield todo[start : start + batch_size]

    def translations(
        self,
        hypotheses: Sequence[Sequence[Hypothesis]],
        alignments: Sequence[Sequence[list[tuple[int, int]]]] | None = None,
        nbest: int = 1,
        attention: Sequence[Sequence[Any]] | None = None,
        source_tokens: Sequence[list[str]] | None = None,
    ) -> list[Translation]:
        """Each line's best Translation (with its n-best list when nbest > 1), and when
        given each hypothesis' alignment and attention matrix and each line's source token
        labels."""
        results = []
        for index, hyps in enumerate(hypotheses):
            found = alignments[index] if alignments is not None else []
            matrices = attention[index] if attention is not None else []
            options = []
            for rank, hyp in enumerate(hyps[:nbest]):
                translation = Translation(
                    self.detokenize(hyp),
                    float(hyp.score),
                    self.tgt_tokenizer.pieces(hyp.tokens),
                )
                if alignments is not None:
                    translation.alignment = found[rank] if rank < len(found) else []
                if attention is not None:
                    translation.source_tokens = list(source_tokens[index]) if source_tokens else []
                    translation.attention = _weights(matrices[rank]) if rank < len(matrices) else []
                options.append(translation)
            best = options[0]
            if nbest > 1:
                best = replace(best, nbest=options)
            results.append(best)
        return results

    def detokenize(self, hyp: Hypothesis) -> str:
        # Untrained or odd outputs can decode to bare "▁" pieces: no stray edge spaces.
        return clean_line(self.tgt_tokenizer.decode(hyp.tokens)).strip()


def _weights(matrix: Any) -> list[list[float]]:
    """An attention matrix as JSON-ready rows, rounded to 4 decimals."""
    return [[round(float(w), 4) for w in row] for row in matrix.float().tolist()]


def clean_line(line: str) -> str:
    """Control characters (tabs, NUL, stray CR…) become spaces; output must stay one line."""
    if line.isprintable():
        return line
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in line)
