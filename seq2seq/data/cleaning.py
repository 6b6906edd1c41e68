"""Cleaning parallel text: pairs dropped, and counted, before tokenization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from seq2seq.data.reading import CorpusError

_MAX_EXAMPLES = 5  # pair numbers kept per kind of drop, for the report


@dataclass
class CleanReport:
    """Counts of what cleaning/filtering did to a list of pairs (never silent).

    ``too_long`` is filled later by the caller that filters by token length
    (use :meth:`add_too_long`, which keeps ``kept`` consistent).
    """

    total: int = 0
    empty: int = 0
    too_long: int = 0
    kept: int = 0
    name: str = ""
    #: 1-based pair numbers of the first few empty pairs, for the report.
    empty_examples: list[int] = field(default_factory=list)
    too_long_examples: list[int] = field(default_factory=list)

    def add_too_long(self, count: int, examples: Sequence[int] = ()) -> None:
        """Record ``count`` kept pairs as dropped for length (1-based numbers in examples)."""
        if count < 0 or count > self.kept:
            raise ValueError(f"too_long count {count} must be between 0 and kept={self.kept}")
        self.too_long += count
        self.kept -= count
        room = _MAX_EXAMPLES - len(self.too_long_examples)
        self.too_long_examples.extend(list(examples)[: max(room, 0)])

    @staticmethod
    def _examples(numbers: Sequence[int], count: int) -> str:
        if not numbers:
            return ""
        more = ", …" if count > len(numbers) else ""
        return " (pairs " + ", ".join(str(n) for n in numbers) + more + ")"

    def __str__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return (
            f"{label}{self.total} pairs read, "
            f"{self.empty} dropped as empty{self._examples(self.empty_examples, self.empty)}, "
            f"{self.too_long} dropped as too long"
            f"{self._examples(self.too_long_examples, self.too_long)}, "
            f"{self.kept} kept"
        )


def drop_empty_pairs(
    src: Sequence[str], tgt: Sequence[str], name: str = ""
) -> tuple[list[str], list[str], CleanReport]:
    """Drop pairs where either side is empty after ``strip()``; return kept pairs and counts.

    The kept strings are returned unchanged (not stripped).
    """
    if len(src) != len(tgt):
        raise CorpusError(
            f"{name or 'pairs'}: {len(src)} source lines but {len(tgt)} target lines; "
            "pairs must be aligned."
        )
    report = CleanReport(total=len(src), name=name)
    out_src: list[str] = []
    out_tgt: list[str] = []
    for i, (s, t) in enumerate(zip(src, tgt, strict=True), start=1):
        if s.strip() and t.strip():
            out_src.append(s)
            out_tgt.append(t)
        else:
            report.empty += 1
            if len(report.empty_examples) < _MAX_EXAMPLES:
                report.empty_examples.append(i)
    report.kept = len(out_src)
    return out_src, out_tgt, report
