"""Named parallel corpora and their train/dev/test splits, one module per corpus.

``load_corpus(name, root, src_lang, tgt_lang)`` returns ``{"train", "dev", "test"}``
→ :class:`ParallelSplit`. Names:

``multi30k``
    Multi30k task 1 (raw captions), any two of en, de, fr, cs: :mod:`.multi30k`.
``tatoeba_en_es``
    Tatoeba English–Spanish pairs, en→es or es→en: :mod:`.tatoeba`.
``files``
    The user's own files, named in the data config: :mod:`.files`.

Missing files of a named corpus are fetched through
:func:`seq2seq.data.prepare.ensure_corpus` (download with internet; offline, an
immediate :class:`CorpusError` naming the files and the prepare command).
Loading does not clean: apply :func:`seq2seq.data.cleaning.drop_empty_pairs`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seq2seq.data.corpora.base import (
    SPLITS,
    ParallelSplit,
    PublicCorpus,
    to_dataset,
    to_dataset_dict,
)
from seq2seq.data.corpora.files import load_files
from seq2seq.data.corpora.multi30k import MULTI30K
from seq2seq.data.corpora.tatoeba import TATOEBA_EN_ES, tatoeba_split_of
from seq2seq.data.prepare import ensure_corpus
from seq2seq.data.reading import CorpusError

__all__ = [
    "CORPORA",
    "PUBLIC",
    "SPLITS",
    "ParallelSplit",
    "PublicCorpus",
    "default_root",
    "load_corpus",
    "load_files",
    "tatoeba_split_of",
    "to_dataset",
    "to_dataset_dict",
]

#: the public corpora that are downloaded and prepared, by name
PUBLIC: dict[str, PublicCorpus] = {corpus.name: corpus for corpus in (MULTI30K, TATOEBA_EN_ES)}
CORPORA = (*PUBLIC, "files")


def default_root() -> Path:
    """The data root: ``$SEQ2SEQ_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("SEQ2SEQ_DATA") or "data")


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
    if name == "files":
        if not paths:
            raise CorpusError(
                "corpus 'files' needs paths (train_src/train_tgt, dev_src/dev_tgt, ... "
                "or train/dev/test .tsv files)."
            )
        return load_files(paths, root)
    corpus = PUBLIC.get(name)
    if corpus is None:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}.")
    base = Path(root).expanduser() if root is not None else default_root()
    corpus.check_languages(src_lang, tgt_lang)
    ensure_corpus(corpus, base, corpus.files_for(src_lang, tgt_lang), download=download)
    return corpus.load(base, src_lang, tgt_lang)
