"""Tatoeba English–Spanish pairs (manythings.org/anki export of 2018-05-13), en→es or es→en.

Source: ``spa-eng.zip``, member ``spa.txt`` (the release used by the TensorFlow
"NMT with attention" tutorial): column 1 (English) becomes ``.en``, column 2
(Spanish) ``.es``; a third (attribution) column of newer releases is dropped.
Newer releases have other content, so their checksums differ. The splits are
not in the download: :func:`tatoeba_split_of` assigns each pair deterministically.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from seq2seq.data import download
from seq2seq.data.checksums import FileChecksum, gzip_bytes
from seq2seq.data.corpora.base import SPLITS, ParallelSplit, PreparedFiles, PublicCorpus
from seq2seq.data.reading import CorpusError, decode_text, read_bytes, read_parallel, split_lines

__all__ = ["TATOEBA_EN_ES", "TatoebaEnEs", "tatoeba_split_of"]

PREFIX = "en_es/manythings-spa-eng-2018.all"
#: tried in order; the first two serve the 2018 release that the checksums describe.
URLS = (
    "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
    "https://raw.githubusercontent.com/Hoangduc212001/hoang/"
    "2cfd26f9551f5c2d614e8000500891801840a438/spa-eng.zip",
    "http://www.manythings.org/anki/spa-eng.zip",
)
LANGUAGES = ("en", "es")

#: split: md5 bucket (0..9999) ranges; 1.7 % each for dev and test (~2,000 pairs).
BUCKETS = 10_000
DEV_END = 170
TEST_END = 340

#: computed from the reference copy of the prepared layout.
CHECKSUMS: dict[str, FileChecksum] = {
    "en_es/manythings-spa-eng-2018.all.en.gz": FileChecksum(
        118964,
        "4bdb3413ef88b956cc35d9daf8857d3c584577541288868d28e8b4110aebc558",
        "c3c97cf0a5335931fe11b339b33a080acb77f03878d618affb72c0ffac834c78",
    ),
    "en_es/manythings-spa-eng-2018.all.es.gz": FileChecksum(
        118964,
        "c055ddcf05f63870e66637bd4a7f574799f4c3b609dd6f23819edcfa6556c34a",
        "2119b7baf8e832b6385bf1a10761cb6b44cf7c6c0ac8c787624a8f4b2854e7c6",
    ),
}


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
    bucket = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % BUCKETS
    if bucket < DEV_END:
        return "dev"
    if bucket < TEST_END:
        return "test"
    return "train"


def _read_spa_txt(source: Path, sources: str) -> tuple[bytes, str]:
    """The bytes of ``spa.txt`` and their origin: a zip, a txt file, or a folder of either."""
    if source.is_file():
        candidates = [source]
    else:
        candidates = [source / "spa-eng.zip", source / "spa.txt", source / "spa-eng" / "spa.txt"]
    for candidate in candidates:
        if not candidate.is_file():
            continue
        if not zipfile.is_zipfile(candidate):
            return read_bytes(candidate), str(candidate)
        try:
            with zipfile.ZipFile(candidate) as zf:
                members = [m for m in zf.namelist() if Path(m).name == "spa.txt"]
                if len(members) != 1:
                    raise CorpusError(
                        f"{candidate}: expected exactly one member named spa.txt, found "
                        f"{members or 'none'} among {zf.namelist()[:10]}. Is this the "
                        "manythings spa-eng.zip?"
                    )
                return zf.read(members[0]), f"{candidate}!{members[0]}"
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            raise CorpusError(f"{candidate}: broken zip file ({exc}); download it again.") from exc
    raise CorpusError(
        f"{source}: no spa-eng.zip or spa.txt found (looked for "
        f"{', '.join(str(c) for c in candidates)}). Download {sources}."
    )


class TatoebaEnEs(PublicCorpus):
    name = "tatoeba_en_es"
    languages = LANGUAGES
    checksums = CHECKSUMS
    sources = "spa-eng.zip (or its spa.txt) from " + " or ".join((URLS[0], URLS[2]))

    def files_for(self, src_lang: str, tgt_lang: str) -> list[str]:
        return list(self.files)  # the split needs the English side, whatever the direction

    def fetch_raw(self, dest: Path, files: Sequence[str]) -> None:
        download.fetch_first(URLS, dest / "spa-eng.zip")

    def prepare_from(self, source: Path, files: Sequence[str], strict: bool) -> PreparedFiles:
        data, origin = _read_spa_txt(source, self.sources)
        columns: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        for i, line in enumerate(split_lines(decode_text(data, origin)), start=1):
            fields = line.split("\t")
            if len(fields) < 2:
                raise CorpusError(
                    f"{origin}:{i}: expected 'english<TAB>spanish[<TAB>attribution]' but found "
                    f"{len(fields)} column(s): {line[:80]!r}. Is this the manythings spa.txt?"
                )
            columns["en"].append(fields[0])
            columns["es"].append(fields[1])
        prepared = PreparedFiles({})
        for lang, lines in columns.items():
            content = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
            prepared.outputs[f"{PREFIX}.{lang}.gz"] = (gzip_bytes(content), content)
        return prepared

    def load(self, root: Path, src_lang: str, tgt_lang: str) -> dict[str, ParallelSplit]:
        en, es = read_parallel(root / f"{PREFIX}.en.gz", root / f"{PREFIX}.es.gz")
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


TATOEBA_EN_ES = TatoebaEnEs()
