"""Named parallel corpora and their train/dev/test splits.

``load_corpus(name, root, src_lang, tgt_lang)`` returns ``{"train", "dev", "test"}``
→ :class:`ParallelSplit`. Names:

``multi30k``
    Multi30k task 1 (raw captions): train / val / test_2016_flickr under
    ``ROOT/multi30k/``; any two of en, de, fr, cs.
``tatoeba_en_es``
    Tatoeba English–Spanish pairs (manythings.org 2018 export) in
    ``ROOT/en_es/manythings-spa-eng-2018.all.{en,es}.gz``, with the deterministic
    split of :func:`tatoeba_split_of`; en→es or es→en.
``files``
    Explicit paths from the config, see :func:`load_files`.

Missing files of a named corpus are fetched through
:func:`seq2seq.data.prepare.ensure_corpus` (download with internet; offline, an
immediate :class:`CorpusError` naming the files and the prepare command).
Loading does not clean: apply :func:`seq2seq.data.cleaning.drop_empty_pairs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq.data import prepare
from seq2seq.data.reading import CorpusError, read_parallel, read_tsv

if TYPE_CHECKING:  # datasets is imported lazily: it is slow to import
    import datasets

__all__ = [
    "CORPORA",
    "SPLITS",
    "ParallelSplit",
    "load_corpus",
    "load_files",
    "tatoeba_split_of",
    "to_dataset",
    "to_dataset_dict",
]

SPLITS = ("train", "dev", "test")
CORPORA = ("multi30k", "tatoeba_en_es", "files")

MULTI30K_LANGS = prepare.MULTI30K_LANGS
#: our split name -> Multi30k file prefix
MULTI30K_SPLIT_FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}

TATOEBA_LANGS = ("en", "es")
#: Tatoeba split: md5 bucket (0..9999) ranges; 1.7 % each for dev and test (~2,000 pairs).
TATOEBA_BUCKETS = 10_000
TATOEBA_DEV_END = 170
TATOEBA_TEST_END = 340


@dataclass
class ParallelSplit:
    """Aligned source and target sentences of one split."""

    src: list[str]
    tgt: list[str]

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise CorpusError(
                f"ParallelSplit: {len(self.src)} source but {len(self.tgt)} target sentences"
            )

    def __len__(self) -> int:
        return len(self.src)


def _check_langs(name: str, src_lang: str, tgt_lang: str, allowed: Sequence[str]) -> None:
    if src_lang not in allowed or tgt_lang not in allowed or src_lang == tgt_lang:
        raise CorpusError(
            f"corpus {name!r} has languages {', '.join(allowed)}; got src_lang={src_lang!r}, "
            f"tgt_lang={tgt_lang!r}. Set two different ones (e.g. data.src_lang / data.tgt_lang)."
        )


def _ensure(name: str, root: Path, needed: Sequence[str], download: bool) -> None:
    missing = [rel for rel in needed if not (root / rel).is_file()]
    if missing:
        prepare.ensure_corpus(name, root, missing, download=download)


# --------------------------------------------------------------------------- multi30k


def _load_multi30k(
    root: Path, src_lang: str, tgt_lang: str, download: bool
) -> dict[str, ParallelSplit]:
    _check_langs("multi30k", src_lang, tgt_lang, MULTI30K_LANGS)
    needed = [
        f"multi30k/{prefix}.{lang}.gz"
        for prefix in MULTI30K_SPLIT_FILES.values()
        for lang in (src_lang, tgt_lang)
    ]
    _ensure("multi30k", root, needed, download)
    out = {}
    for split, prefix in MULTI30K_SPLIT_FILES.items():
        src, tgt = read_parallel(
            root / f"multi30k/{prefix}.{src_lang}.gz", root / f"multi30k/{prefix}.{tgt_lang}.gz"
        )
        out[split] = ParallelSplit(src, tgt)
    return out


# --------------------------------------------------------------------------- tatoeba


def tatoeba_split_of(english: str) -> str:
    """The split (``"train"``, ``"dev"`` or ``"test"``) of a Tatoeba pair, from its English side.

    Rule: ``key = " ".join(english.split()).casefold()`` (whitespace-normalised,
    case-folded English sentence); ``bucket = int(md5(key.encode("utf-8")).hexdigest(), 16)
    % 10000``; bucket ``< 170`` → dev, ``170 <= bucket < 340`` → test, else train.

    Every pair whose English side has the same key lands in the same split, so an
    English sentence with several Spanish translations never straddles splits.
    The rule depends only on the sentence: not on file order, direction
    (en→es or es→en) or Python's hash seed. On the 2018 file (118,964 pairs)
    it gives 114,855 train, 2,037 dev and 2,072 test pairs.
    """
    key = " ".join(english.split()).casefold()
    bucket = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % TATOEBA_BUCKETS
    if bucket < TATOEBA_DEV_END:
        return "dev"
    if bucket < TATOEBA_TEST_END:
        return "test"
    return "train"


def _load_tatoeba(
    root: Path, src_lang: str, tgt_lang: str, download: bool
) -> dict[str, ParallelSplit]:
    _check_langs("tatoeba_en_es", src_lang, tgt_lang, TATOEBA_LANGS)
    en_rel, es_rel = prepare.CORPUS_FILES["tatoeba_en_es"]
    _ensure("tatoeba_en_es", root, [en_rel, es_rel], download)
    en, es = read_parallel(root / en_rel, root / es_rel)
    parts: dict[str, tuple[list[str], list[str]]] = {s: ([], []) for s in SPLITS}
    memo: dict[str, str] = {}
    for e, s in zip(en, es, strict=True):
        split = memo.get(e)
        if split is None:
            split = memo[e] = tatoeba_split_of(e)
        ens, ess = parts[split]
        ens.append(e)
        ess.append(s)
    if src_lang == "en":
        return {k: ParallelSplit(e, s) for k, (e, s) in parts.items()}
    return {k: ParallelSplit(s, e) for k, (e, s) in parts.items()}


# --------------------------------------------------------------------------- files


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


# --------------------------------------------------------------------------- entry points


def load_corpus(
    name: str,
    root: str | Path | None,
    src_lang: str,
    tgt_lang: str,
    *,
    paths: Mapping[str, Any] | None = None,
    download: bool = True,
) -> dict[str, ParallelSplit]:
    """Load corpus ``name`` from data root ``root`` as ``{"train", "dev", "test"}`` splits.

    ``root=None`` means ``$SEQ2SEQ_DATA`` or ``./data``. For ``name="files"``,
    ``paths`` is passed to :func:`load_files` (relative paths resolved against
    ``root`` when given; ``src_lang``/``tgt_lang`` are only labels). Missing files
    of a named corpus are downloaded and prepared unless ``download=False``;
    offline this raises :class:`CorpusError` naming the files and the command.
    """
    base = Path(root).expanduser() if root is not None else prepare.default_root()
    if name == "multi30k":
        return _load_multi30k(base, src_lang, tgt_lang, download)
    if name == "tatoeba_en_es":
        return _load_tatoeba(base, src_lang, tgt_lang, download)
    if name == "files":
        if not paths:
            raise CorpusError(
                "corpus 'files' needs paths (train_src/train_tgt, dev_src/dev_tgt, ... "
                "or train/dev/test .tsv files)."
            )
        return load_files(paths, root)
    raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}.")


def to_dataset(split: ParallelSplit) -> datasets.Dataset:
    """The split as a Hugging Face ``datasets.Dataset`` with columns ``src`` and ``tgt``."""
    import datasets

    return datasets.Dataset.from_dict({"src": split.src, "tgt": split.tgt})


def to_dataset_dict(splits: Mapping[str, ParallelSplit]) -> datasets.DatasetDict:
    """All splits as a ``datasets.DatasetDict`` (keys as given, columns ``src``/``tgt``)."""
    import datasets

    return datasets.DatasetDict({k: to_dataset(v) for k, v in splits.items()})
