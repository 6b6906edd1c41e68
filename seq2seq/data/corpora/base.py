"""What every named public corpus provides, and the split type that every loader returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.data.checksums import FileChecksum
from seq2seq.data.reading import CorpusError

if TYPE_CHECKING:  # datasets is imported lazily: it is slow to import
    import datasets

__all__ = [
    "SPLITS",
    "ParallelSplit",
    "PreparedFiles",
    "PublicCorpus",
    "to_dataset",
    "to_dataset_dict",
]

SPLITS = ("train", "dev", "test")


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


def to_dataset(split: ParallelSplit) -> datasets.Dataset:
    """The split as a Hugging Face ``datasets.Dataset`` with columns ``src`` and ``tgt``."""
    import datasets

    return datasets.Dataset.from_dict({"src": split.src, "tgt": split.tgt})


def to_dataset_dict(splits: Mapping[str, ParallelSplit]) -> datasets.DatasetDict:
    """All splits as a ``datasets.DatasetDict`` (keys as given, columns ``src``/``tgt``)."""
    import datasets

    return datasets.DatasetDict({k: to_dataset(v) for k, v in splits.items()})


@dataclass
class PreparedFiles:
    """Prepared files built in memory from raw downloads, to be verified before any is written.

    ``outputs`` maps each file (relative to the data root) to its bytes as stored
    and its uncompressed content; ``not_found`` names the raw files that were absent.
    """

    outputs: dict[str, tuple[bytes, bytes]]
    not_found: list[str] = field(default_factory=list)


class PublicCorpus(ABC):
    """A public corpus: downloaded, prepared into the data root and split the same way for all.

    A corpus only knows its own files; :mod:`seq2seq.data.prepare` fetches,
    verifies and writes them, and :func:`seq2seq.data.corpora.load_corpus` loads them.
    """

    #: name in configs and on the command line
    name: str
    #: any two different ones make a translation direction
    languages: tuple[str, ...]
    #: every prepared file (relative to the data root) with its published checksum
    checksums: Mapping[str, FileChecksum]
    #: where its raw files come from, for messages
    sources: str

    @property
    def files(self) -> tuple[str, ...]:
        """Every prepared file of the corpus, relative to the data root."""
        return tuple(self.checksums)

    def check_languages(self, src_lang: str, tgt_lang: str) -> None:
        """Raise :class:`CorpusError` unless ``src_lang``→``tgt_lang`` is a direction it has."""
        allowed = self.languages
        if src_lang not in allowed or tgt_lang not in allowed or src_lang == tgt_lang:
            raise CorpusError(
                f"corpus {self.name!r} has languages {', '.join(allowed)}; got "
                f"src_lang={src_lang!r}, tgt_lang={tgt_lang!r}. Set two different ones "
                "(e.g. data.src_lang / data.tgt_lang)."
            )

    @abstractmethod
    def files_for(self, src_lang: str, tgt_lang: str) -> list[str]:
        """The prepared files that the direction ``src_lang``→``tgt_lang`` reads."""

    @abstractmethod
    def fetch_raw(self, dest: Path, files: Sequence[str]) -> None:
        """Download into folder ``dest`` the raw files that ``files`` are prepared from.

        Raises ``OSError`` when the network fails.
        """

    @abstractmethod
    def prepare_from(self, source: Path, files: Sequence[str], strict: bool) -> PreparedFiles:
        """Build ``files`` from raw downloads in ``source`` (a folder, or a downloaded file).

        An absent raw file is listed in ``not_found``; with ``strict`` (or when
        nothing was found) it raises :class:`CorpusError` naming what to download.
        """

    @abstractmethod
    def load(self, root: Path, src_lang: str, tgt_lang: str) -> dict[str, ParallelSplit]:
        """Read the splits ``train``, ``dev``, ``test`` from the prepared files under ``root``."""
