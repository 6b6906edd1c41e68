"""Checks of search options that need no torch: the torch strategies and the numpy
runtime (seq2seq.runtime) share them, and the command line runs them before a model loads."""

from __future__ import annotations

from typing import Any


def check_beam_options(
    *,
    beam_size: int,
    nbest: int,
    min_length: int,
    no_repeat_ngram_size: int,
    coverage_penalty: float,
    **_: Any,
) -> None:
    """ValueError for settings beam search cannot use (the command line checks them early)."""
    if beam_size < 1:
        raise ValueError(f"beam: beam_size must be >= 1, got {beam_size}")
    if nbest < 1:
        raise ValueError(f"beam: nbest must be >= 1, got {nbest}")
    if nbest > beam_size:
        raise ValueError(f"beam: nbest ({nbest}) cannot exceed beam_size ({beam_size})")
    if min_length < 0:
        raise ValueError(f"beam: min_length must be >= 0, got {min_length}")
    if no_repeat_ngram_size < 0:
        raise ValueError(
            f"beam: no_repeat_ngram_size must be >= 0 (0 = off), got {no_repeat_ngram_size}"
        )
    if coverage_penalty < 0:
        raise ValueError(f"beam: coverage_penalty must be >= 0 (0 = off), got {coverage_penalty}")
