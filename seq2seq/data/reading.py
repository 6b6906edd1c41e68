"""Reading parallel text: plain or gzip UTF-8 files, aligned pairs and TSV.

Every problem with an input file is a :class:`CorpusError` whose message names
the file (and the 1-based line number where one applies) and says what to do.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

__all__ = [
    "CorpusError",
    "decode_text",
    "read_bytes",
    "read_lines",
    "read_parallel",
    "read_tsv",
    "split_lines",
]

_BOM = "\ufeff"


class CorpusError(ValueError):
    """A corpus file is missing, unreadable, malformed or misaligned.

    The message names the file (and line, 1-based, where relevant) and what to do.
    """


def _is_gzip_name(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def read_bytes(path: str | Path) -> bytes:
    """Return the (decompressed, for a ``.gz`` name) bytes of ``path``.

    Raises :class:`CorpusError` for a missing/unreadable file or a broken gzip stream.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CorpusError(
            f"{p}: file not found. Check the path (or data.root / SEQ2SEQ_DATA); "
            "for a named corpus, run `python data_scripts/prepare.py CORPUS --root DIR`."
        )
    if p.is_dir():
        raise CorpusError(f"{p}: is a directory, expected a text file (plain or .gz).")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CorpusError(
            f"{p}: cannot read file ({exc.strerror or exc}); check permissions."
        ) from exc
    if not _is_gzip_name(p):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(
            f"{p}: not a valid gzip file ({exc}). The name ends in .gz, so it must be "
            "gzip-compressed: re-download or re-prepare it, or rename it without .gz "
            "if it is plain text."
        ) from exc


def decode_text(data: bytes, path: str | Path) -> str:
    """Decode UTF-8 ``data`` read from ``path``; drop a leading BOM.

    Invalid UTF-8 raises :class:`CorpusError` naming the file, the 1-based line
    and the byte column of the first bad byte.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Locate the line in binary: count newlines before the first bad byte.
        line_no = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        bad = data[exc.start : exc.end]
        raise CorpusError(
            f"{path}:{line_no}: invalid UTF-8 (byte {bad!r} at byte column {column} of "
            f"line {line_no}). Corpora must be UTF-8: convert the file "
            "(e.g. `iconv -f LATIN1 -t UTF-8`) or fix/remove that line."
        ) from None
    if text.startswith(_BOM):
        text = text[1:]
    return text


def split_lines(text: str) -> list[str]:
    """Split on ``"\\n"`` only; drop the terminator and one ``"\\r"`` before it.

    A final line without a newline is kept; an empty text gives ``[]``. Other
    characters that :meth:`str.splitlines` would treat as breaks (``\\x0b``,
    ``\\x1c``, ``\\u2028``, a lone ``\\r``…) stay inside their line, so line numbers
    match ``wc -l``/``sed -n``.
    """
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path: str | Path) -> list[str]:
    """Read a plain or gzip (by ``.gz`` suffix) UTF-8 text file as a list of lines.

    One trailing ``"\\n"`` (and a ``"\\r"`` before it) is stripped from each line;
    a UTF-8 BOM at the start is dropped; a last line without newline is kept.
    Missing file or invalid UTF-8 → :class:`CorpusError` naming file (and line).
    """
    p = Path(path).expanduser()
    return split_lines(decode_text(read_bytes(p), p))


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Read two line-aligned files; a line-count mismatch is a :class:`CorpusError`."""
    src = read_lines(src_path)
    tgt = read_lines(tgt_path)
    if len(src) != len(tgt):
        raise CorpusError(
            f"parallel files are not aligned: {src_path} has {len(src)} lines but "
            f"{tgt_path} has {len(tgt)} lines. Line N of one must be the translation of "
            "line N of the other: check that both files belong to the same corpus and "
            "split, and that no sentence contains a stray newline."
        )
    return src, tgt


def read_tsv(
    path: str | Path, src_column: int = 0, tgt_column: int = 1
) -> tuple[list[str], list[str]]:
    """Read a tab-separated file (plain or ``.gz``); return two columns as src and tgt.

    Extra columns are ignored. A line with too few columns is a :class:`CorpusError`
    naming ``file:line``.
    """
    if src_column < 0 or tgt_column < 0:
        raise CorpusError(
            f"{path}: TSV column indexes must be >= 0 (got {src_column}, {tgt_column})."
        )
    need = max(src_column, tgt_column) + 1
    src: list[str] = []
    tgt: list[str] = []
    for i, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) < need:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise CorpusError(
                f"{path}:{i}: expected at least {need} tab-separated columns "
                f"(src column {src_column}, tgt column {tgt_column}) but found "
                f"{len(fields)}: {shown!r}. Fix or remove that line, or choose other columns."
            )
        src.append(fields[src_column])
        tgt.append(fields[tgt_column])
    return src, tgt
