"""Multi30k task 1 (raw image captions): any two of en, de, fr, cs; 29,000 / 1,014 / 1,000 pairs.

Source: GitHub ``multi30k/dataset``, ``data/task1/raw/{split}.{lang}.gz``, copied
byte for byte to ``ROOT/multi30k/``. Offline, the raw files come from a folder
holding them (or their uncompressed ``{split}.{lang}``), or from a clone of that
repository. Our ``dev`` split is ``val``, our ``test`` split ``test_2016_flickr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2seq.data import download
from seq2seq.data.checksums import FileChecksum, gzip_bytes
from seq2seq.data.corpora.base import ParallelSplit, PreparedFiles, PublicCorpus
from seq2seq.data.reading import CorpusError, decode_text, read_bytes, read_parallel

__all__ = ["MULTI30K", "Multi30k"]

URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"
LANGUAGES = ("en", "de", "fr", "cs")
#: our split name -> Multi30k file prefix
SPLIT_FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}

#: computed from the reference copy of the prepared layout.
CHECKSUMS: dict[str, FileChecksum] = {
    "multi30k/train.en.gz": FileChecksum(
        29000,
        "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
        "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    ),
    "multi30k/train.de.gz": FileChecksum(
        29000,
        "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
        "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    ),
    "multi30k/train.fr.gz": FileChecksum(
        29000,
        "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
        "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
    ),
    "multi30k/train.cs.gz": FileChecksum(
        29000,
        "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
        "2be68b38c8d586ff4f54eb13cc6e1baaaa053695b3f070d3038303a47f2268da",
    ),
    "multi30k/val.en.gz": FileChecksum(
        1014,
        "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
        "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    ),
    "multi30k/val.de.gz": FileChecksum(
        1014,
        "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
        "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    ),
    "multi30k/val.fr.gz": FileChecksum(
        1014,
        "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
        "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
    ),
    "multi30k/val.cs.gz": FileChecksum(
        1014,
        "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
        "d53827e469b0a1ca8d57e9e26b2b64c4bc4b33f5479c7b03ae87ae5c882c3e33",
    ),
    "multi30k/test_2016_flickr.en.gz": FileChecksum(
        1000,
        "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
        "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    ),
    "multi30k/test_2016_flickr.de.gz": FileChecksum(
        1000,
        "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
        "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    ),
    "multi30k/test_2016_flickr.fr.gz": FileChecksum(
        1000,
        "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
        "cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6",
    ),
    "multi30k/test_2016_flickr.cs.gz": FileChecksum(
        1000,
        "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
        "45adb85f688de8407fddcbe1b36dca15d12aab868149b337e2576f2d6d2ff8d8",
    ),
}


def _prepared_file(prefix: str, lang: str) -> str:
    return f"multi30k/{prefix}.{lang}.gz"


def _find_raw(source: Path, raw_name: str) -> Path | None:
    """``{split}.{lang}.gz`` or uncompressed ``{split}.{lang}`` in ``source`` or a repo clone."""
    stem = raw_name[: -len(".gz")]
    for folder in (source, source / "data" / "task1" / "raw", source / "multi30k"):
        for candidate in (folder / raw_name, folder / stem):
            if candidate.is_file():
                return candidate
    return None


class Multi30k(PublicCorpus):
    name = "multi30k"
    languages = LANGUAGES
    checksums = CHECKSUMS
    sources = (
        "the Multi30k raw files {train,val,test_2016_flickr}.{en,de,fr,cs}.gz from "
        + URL.format(name="")
    )

    def files_for(self, src_lang: str, tgt_lang: str) -> list[str]:
        return [
            _prepared_file(prefix, lang)
            for prefix in SPLIT_FILES.values()
            for lang in (src_lang, tgt_lang)
        ]

    def fetch_raw(self, dest: Path, files: Sequence[str]) -> None:
        for rel in files:
            raw_name = Path(rel).name
            download.fetch(URL.format(name=raw_name), dest / raw_name)

    def prepare_from(self, source: Path, files: Sequence[str], strict: bool) -> PreparedFiles:
        if source.is_file():
            raise CorpusError(
                f"{source}: for multi30k, --from-dir must be a folder holding "
                "{train,val,test_2016_flickr}.{en,de,fr,cs}.gz."
            )
        prepared = PreparedFiles({})
        for rel in files:
            raw_name = Path(rel).name
            raw = _find_raw(source, raw_name)
            if raw is None:
                prepared.not_found.append(raw_name)
                continue
            content = read_bytes(raw)  # decompresses .gz, CorpusError if broken
            decode_text(content, raw)  # CorpusError naming file:line if not UTF-8
            file_bytes = raw.read_bytes() if raw.suffix == ".gz" else gzip_bytes(content)
            prepared.outputs[rel] = (file_bytes, content)
        if prepared.not_found and (strict or not prepared.outputs):
            raise CorpusError(
                f"{source}: missing Multi30k raw files {', '.join(prepared.not_found)} (looked "
                f"in {source} and {source / 'data/task1/raw'}). Download {self.sources}<name>."
            )
        return prepared

    def load(self, root: Path, src_lang: str, tgt_lang: str) -> dict[str, ParallelSplit]:
        splits = {}
        for split, prefix in SPLIT_FILES.items():
            src, tgt = read_parallel(
                root / _prepared_file(prefix, src_lang), root / _prepared_file(prefix, tgt_lang)
            )
            splits[split] = ParallelSplit(src, tgt)
        return splits


MULTI30K = Multi30k()
