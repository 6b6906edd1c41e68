"""Cleaning parallel training text: filters that drop pairs, each counting what it dropped.

Empty pairs and pairs over ``data.max_length`` tokens are always dropped; the filters of
``data.filters`` are off unless set. Every dropped pair is counted once, under the first
filter (in :data:`FILTERS` order) that rejects it, so the counts add up to what was read.
Only training data is cleaned: dev and test are scored against references.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seq2seq.data.reading import CorpusError

_MAX_EXAMPLES = 5  # pair numbers kept per kind of drop, for the report

#: Every reason a pair is dropped, in the order the filters run, with its report wording.
FILTERS: dict[str, str] = {
    "empty": "dropped as empty",
    "control_chars": "dropped for control characters",
    "too_many_chars": "dropped as over data.filters.max_chars characters",
    "copy": "dropped as copies (source = target)",
    "duplicate": "dropped as duplicates",
    "too_long": "dropped as too long",
    "length_ratio": "dropped for their length ratio",
}
ALWAYS = ("empty", "too_long")  # today's cleaning, on whatever the config says

# C0/C1 controls but tab, surrogates, private use and U+FFFD (the mark of a decoding error).
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff\ufffd]"
)


@dataclass(frozen=True)
class Filters:
    """The optional filters (``data.filters``); the defaults drop nothing."""

    max_chars: int | None = None
    max_length_ratio: float | None = None
    drop_copies: bool = False
    dedupe: bool = False
    drop_control_chars: bool = False

    @classmethod
    def from_config(cls, data_cfg: Any) -> Filters:
        """The filters of a data config; a config without ``filters`` (older runs) has none."""
        section = getattr(data_cfg, "get", lambda *_: None)("filters")
        if not section:
            return cls()
        known = cls.__dataclass_fields__
        return cls(**{k: section[k] for k in section if k in known and section[k] is not None})

    def active(self) -> list[str]:
        """The reasons these filters can drop a pair for, in :data:`FILTERS` order."""
        on = {
            "empty": True,
            "control_chars": self.drop_control_chars,
            "too_many_chars": self.max_chars is not None,
            "copy": self.drop_copies,
            "duplicate": self.dedupe,
            "too_long": True,
            "length_ratio": self.max_length_ratio is not None,
        }
        return [name for name in FILTERS if on[name]]

    def optional(self) -> list[str]:
        """The active reasons beyond the ones always on (empty, too_long)."""
        return [name for name in self.active() if name not in ALWAYS]


def has_control_chars(text: str) -> bool:
    """A control (not tab), surrogate, private-use or unassigned code point, or U+FFFD."""
    if _CONTROL.search(text):
        return True
    return not text.isascii() and any(unicodedata.category(c) == "Cn" for c in text)


def token_drop(src_len: int, tgt_len: int, max_length: int, ratio: float | None) -> str | None:
    """Why a tokenized pair is dropped (``too_long``, ``length_ratio``), or None to keep it."""
    if src_len > max_length or tgt_len > max_length:
        return "too_long"
    if ratio is not None and max(src_len, tgt_len) > ratio * max(min(src_len, tgt_len), 1):
        return "length_ratio"
    return None


@dataclass
class CleanReport:
    """Counts of what cleaning did to a list of pairs (never silent): ``dropped`` maps each
    active filter to the pairs it removed, in the order the filters ran."""

    total: int = 0
    kept: int = 0
    name: str = ""
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALWAYS, 0))
    #: 1-based pair numbers (in the training data as read) of the first few drops per filter.
    examples: dict[str, list[int]] = field(default_factory=dict)

    @property
    def empty(self) -> int:
        return self.dropped.get("empty", 0)

    @property
    def too_long(self) -> int:
        return self.dropped.get("too_long", 0)

    @property
    def empty_examples(self) -> list[int]:
        return self.examples.get("empty", [])

    @property
    def too_long_examples(self) -> list[int]:
        return self.examples.get("too_long", [])

    def add(self, reason: str, count: int, examples: Sequence[int] = ()) -> None:
        """Record ``count`` kept pairs as dropped for ``reason`` (1-based numbers in examples)."""
        if reason not in FILTERS:
            raise ValueError(f"unknown reason {reason!r}; expected one of {', '.join(FILTERS)}")
        if count < 0 or count > self.kept:
            raise ValueError(f"{reason} count {count} must be between 0 and kept={self.kept}")
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        self.kept -= count
        if examples:
            shown = self.examples.setdefault(reason, [])
            shown.extend(list(examples)[: max(_MAX_EXAMPLES - len(shown), 0)])

    def add_too_long(self, count: int, examples: Sequence[int] = ()) -> None:
        """Record ``count`` kept pairs as dropped for length (1-based numbers in examples)."""
        self.add("too_long", count, examples)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (``data_report.json`` of a run)."""
        return {
            "name": self.name,
            "total": self.total,
            "dropped": {k: self.dropped[k] for k in FILTERS if k in self.dropped},
            "kept": self.kept,
            "examples": {k: v for k, v in self.examples.items() if v},
        }

    @staticmethod
    def _examples(numbers: Sequence[int], count: int) -> str:
        if not numbers:
            return ""
        more = ", …" if count > len(numbers) else ""
        return " (pairs " + ", ".join(str(n) for n in numbers) + more + ")"

    def __str__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        parts = [f"{self.total} pairs read"]
        for reason, wording in FILTERS.items():
            if reason in self.dropped:
                count = self.dropped[reason]
                shown = self._examples(self.examples.get(reason, []), count)
                parts.append(f"{count} {wording}{shown}")
        return label + ", ".join([*parts, f"{self.kept} kept"])


def _text_drop(s: str, t: str, filters: Filters, seen: set[tuple[str, str]]) -> str | None:
    if not (s.strip() and t.strip()):
        return "empty"
    if filters.drop_control_chars and (has_control_chars(s) or has_control_chars(t)):
        return "control_chars"
    if filters.max_chars is not None and max(len(s), len(t)) > filters.max_chars:
        return "too_many_chars"
    if filters.drop_copies and s.strip() == t.strip():
        return "copy"
    if filters.dedupe:
        key = (s.strip(), t.strip())
        if key in seen:
            return "duplicate"
        seen.add(key)
    return None


def clean_pairs(
    src: Sequence[str], tgt: Sequence[str], filters: Filters = Filters(), name: str = ""
) -> tuple[list[str], list[str], list[int], CleanReport]:
    """Run the text filters (all but the token-length ones) over aligned pairs.

    Returns the kept pairs (unchanged, not stripped), their 1-based pair numbers in the
    input, and the report. Copies and duplicates compare the stripped sides exactly
    (case and punctuation count); a duplicate keeps its first occurrence.
    """
    if len(src) != len(tgt):
        raise CorpusError(
            f"{name or 'pairs'}: {len(src)} source lines but {len(tgt)} target lines; "
            "pairs must be aligned."
        )
    report = CleanReport(total=len(src), name=name, dropped=dict.fromkeys(filters.active(), 0))
    out_src: list[str] = []
    out_tgt: list[str] = []
    numbers: list[int] = []
    seen: set[tuple[str, str]] = set()
    for i, (s, t) in enumerate(zip(src, tgt, strict=True), start=1):
        reason = _text_drop(s, t, filters, seen)
        if reason is None:
            out_src.append(s)
            out_tgt.append(t)
            numbers.append(i)
            continue
        report.dropped[reason] += 1
        shown = report.examples.setdefault(reason, [])
        if len(shown) < _MAX_EXAMPLES:
            shown.append(i)
    report.kept = len(out_src)
    return out_src, out_tgt, numbers, report


def drop_empty_pairs(
    src: Sequence[str], tgt: Sequence[str], name: str = ""
) -> tuple[list[str], list[str], CleanReport]:
    """Drop pairs where either side is empty after ``strip()``; return kept pairs and counts.

    The kept strings are returned unchanged (not stripped).
    """
    kept_src, kept_tgt, _, report = clean_pairs(src, tgt, Filters(), name)
    return kept_src, kept_tgt, report
