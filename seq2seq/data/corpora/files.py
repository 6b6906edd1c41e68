"""The user's own parallel files, named in the data config (corpus ``files``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seq2seq.data.corpora.base import SPLITS, ParallelSplit
from seq2seq.data.reading import CorpusError, read_parallel, read_tsv

__all__ = ["load_files"]


def _is_tsv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".tsv") or name.endswith(".tsv.gz")


def load_files(
    paths: Mapping[str, Any], root: str | Path | None = None, require_train: bool = True
) -> dict[str, ParallelSplit]:
    """Load splits from explicit files.

    ``paths`` maps, for each split ``train`` / ``dev`` / ``test``, either
    ``<split>_src`` and ``<split>_tgt`` to two line-aligned text files (plain or
    ``.gz``), or ``<split>`` to one ``.tsv``/``.tsv.gz`` file (columns
    ``src_column``/``tgt_column``, optional int keys, default 0 and 1). Relative
    paths are resolved against ``root`` (if given). ``train`` is required unless
    ``require_train`` is false (streamed training data); a split without paths (or
    with null paths) is left out of the result.
    """
    base = Path(root).expanduser() if root is not None else None
    entries = {k: v for k, v in dict(paths).items() if v is not None and v != ""}
    src_column = int(entries.pop("src_column", 0))
    tgt_column = int(entries.pop("tgt_column", 1))
    valid = {f"{s}{suffix}" for s in SPLITS for suffix in ("", "_src", "_tgt")}
    unknown = sorted(set(entries) - valid)
    if unknown:
        raise CorpusError(
            f"data paths: unknown key(s) {unknown}; use train_src/train_tgt, dev_src/dev_tgt, "
            "test_src/test_tgt (aligned files) or train/dev/test (.tsv files), plus optional "
            "src_column/tgt_column."
        )

    def resolve(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() or base is None else base / p

    plan: dict[str, tuple[Path, ...]] = {}
    for split in SPLITS:
        pair = (entries.get(f"{split}_src"), entries.get(f"{split}_tgt"))
        single = entries.get(split)
        if single is not None and any(pair):
            raise CorpusError(
                f"data paths: give either {split} (a .tsv) or {split}_src/{split}_tgt, not both."
            )
        if single is not None:
            p = resolve(single)
            if not _is_tsv(p):
                raise CorpusError(
                    f"data paths: {split}={p} is not a .tsv/.tsv.gz file; for two aligned "
                    f"text files use {split}_src and {split}_tgt."
                )
            plan[split] = (p,)
        elif any(pair):
            if not all(pair):
                which = f"{split}_tgt" if pair[0] else f"{split}_src"
                raise CorpusError(f"data paths: {which} is missing (the other side is given).")
            plan[split] = (resolve(pair[0]), resolve(pair[1]))
    if "train" not in plan and require_train:
        raise CorpusError(
            "data paths: no training data; set train_src and train_tgt (or train to a .tsv)."
        )
    missing = [str(p) for files in plan.values() for p in files if not p.is_file()]
    if missing:
        raise CorpusError(
            "data paths: file(s) not found: "
            + ", ".join(missing)
            + (f" (relative paths are resolved against {base})" if base is not None else "")
            + ". Fix the paths in the data config."
        )
    out = {}
    for split, files in plan.items():
        if len(files) == 1:
            src, tgt = read_tsv(files[0], src_column, tgt_column)
        else:
            src, tgt = read_parallel(*files)
        out[split] = ParallelSplit(src, tgt)
    return out
