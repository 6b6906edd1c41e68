"""Download and prepare public corpora into the ``$SEQ2SEQ_DATA`` layout, with checksums.

Layout written under ``ROOT`` (gzip-compressed UTF-8, one sentence per line)::

    multi30k/{train,val,test_2016_flickr}.{en,de,fr,cs}.gz
    en_es/manythings-spa-eng-2018.all.{en,es}.gz

Sources:

* ``multi30k`` — Multi30k task 1 raw captions, GitHub ``multi30k/dataset``,
  ``data/task1/raw/{split}.{lang}.gz``; copied byte for byte.
* ``tatoeba_en_es`` — Tatoeba pairs exported by manythings.org/anki
  (``spa-eng.zip``, member ``spa.txt``, 2018-05-13 release; the one used by the
  TensorFlow "NMT with attention" tutorial). Column 1 (English) becomes ``.en``,
  column 2 (Spanish) ``.es``; a third (attribution) column of newer releases is
  dropped. Newer releases have different content, so their checksums differ.

Every prepared file is checked against :data:`CHECKSUMS` (SHA-256 of the file and
of its uncompressed content; a file passes if either matches, because gzip bytes
depend on the compressor). Files are written atomically (temp file + rename) and
only after they pass verification (or with ``verify=False`` / ``--no-verify``).

Command line (also ``python data_scripts/prepare.py``)::

    python -m seq2seq.data.prepare {multi30k,tatoeba_en_es,all} --root DIR [--from-dir DIR_OR_FILE]

``--from-dir`` is the offline path: a folder (or file) holding already-downloaded
raw files — Multi30k ``{split}.{lang}.gz`` (or uncompressed ``{split}.{lang}``),
or ``spa-eng.zip`` / ``spa.txt``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from seq2seq.data.reading import CorpusError, decode_text, read_bytes, split_lines

__all__ = [
    "CHECKSUMS",
    "CORPUS_FILES",
    "DOWNLOAD_TIMEOUT",
    "PREPARABLE",
    "default_root",
    "download",
    "ensure_corpus",
    "fetch_raw",
    "gzip_bytes",
    "main",
    "missing_files",
    "prepare_command",
    "prepare_corpus",
    "verify_file",
]

log = logging.getLogger(__name__)

#: seconds for each network operation (connect, each read); keeps offline failure quick.
DOWNLOAD_TIMEOUT = 10.0

MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"

TATOEBA_PREFIX = "en_es/manythings-spa-eng-2018.all"
#: tried in order; the first two serve the 2018 release that CHECKSUMS describe.
TATOEBA_URLS = (
    "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
    "https://raw.githubusercontent.com/Hoangduc212001/hoang/"
    "2cfd26f9551f5c2d614e8000500891801840a438/spa-eng.zip",
    "http://www.manythings.org/anki/spa-eng.zip",
)

#: output files of each corpus, relative to the data root.
CORPUS_FILES: dict[str, tuple[str, ...]] = {
    "multi30k": tuple(
        f"multi30k/{split}.{lang}.gz" for split in MULTI30K_SPLITS for lang in MULTI30K_LANGS
    ),
    "tatoeba_en_es": (f"{TATOEBA_PREFIX}.en.gz", f"{TATOEBA_PREFIX}.es.gz"),
}
PREPARABLE = tuple(CORPUS_FILES)


@dataclass(frozen=True)
class FileChecksum:
    """Expected line count and SHA-256 digests of one prepared file."""

    lines: int
    sha256: str  # of the file as stored (gzip bytes)
    content_sha256: str  # of the uncompressed content


_F = FileChecksum
#: computed from the reference copy of the prepared layout (../shared/data).
CHECKSUMS: dict[str, FileChecksum] = {
    "multi30k/test_2016_flickr.cs.gz": _F(
        1000,
        "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
        "45adb85f688de8407fddcbe1b36dca15d12aab868149b337e2576f2d6d2ff8d8",
    ),
    "multi30k/test_2016_flickr.de.gz": _F(
        1000,
        "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
        "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    ),
    "multi30k/test_2016_flickr.en.gz": _F(
        1000,
        "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
        "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    ),
    "multi30k/test_2016_flickr.fr.gz": _F(
        1000,
        "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
        "cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6",
    ),
    "multi30k/train.cs.gz": _F(
        29000,
        "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
        "2be68b38c8d586ff4f54eb13cc6e1baaaa053695b3f070d3038303a47f2268da",
    ),
    "multi30k/train.de.gz": _F(
        29000,
        "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
        "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    ),
    "multi30k/train.en.gz": _F(
        29000,
        "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
        "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    ),
    "multi30k/train.fr.gz": _F(
        29000,
        "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
        "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
    ),
    "multi30k/val.cs.gz": _F(
        1014,
        "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
        "d53827e469b0a1ca8d57e9e26b2b64c4bc4b33f5479c7b03ae87ae5c882c3e33",
    ),
    "multi30k/val.de.gz": _F(
        1014,
        "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
        "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    ),
    "multi30k/val.en.gz": _F(
        1014,
        "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
        "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    ),
    "multi30k/val.fr.gz": _F(
        1014,
        "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
        "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
    ),
    "en_es/manythings-spa-eng-2018.all.en.gz": _F(
        118964,
        "4bdb3413ef88b956cc35d9daf8857d3c584577541288868d28e8b4110aebc558",
        "c3c97cf0a5335931fe11b339b33a080acb77f03878d618affb72c0ffac834c78",
    ),
    "en_es/manythings-spa-eng-2018.all.es.gz": _F(
        118964,
        "c055ddcf05f63870e66637bd4a7f574799f4c3b609dd6f23819edcfa6556c34a",
        "2119b7baf8e832b6385bf1a10761cb6b44cf7c6c0ac8c787624a8f4b2854e7c6",
    ),
}
del _F


# --------------------------------------------------------------------------- helpers


def default_root() -> Path:
    """The data root: ``$SEQ2SEQ_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("SEQ2SEQ_DATA") or "data")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no name, mtime 0, max compression), as ``gzip -9n`` writes it."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = comp.compress(data) + comp.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    trailer = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + (
        len(data) & 0xFFFFFFFF
    ).to_bytes(4, "little")
    return header + body + trailer


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check(rel: str, file_bytes: bytes, content: bytes) -> tuple[bool, str]:
    expected = CHECKSUMS.get(rel)
    if expected is None:
        return True, f"{rel}: no checksum on record"
    if _sha256(file_bytes) == expected.sha256:
        return True, f"{rel}: checksum OK"
    if _sha256(content) == expected.content_sha256:
        return True, f"{rel}: content checksum OK (gzip bytes differ: another compressor)"
    lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return False, (
        f"{rel}: checksum mismatch (SHA-256 {_sha256(file_bytes)}, content SHA-256 "
        f"{_sha256(content)}, {lines} lines; expected {expected.sha256} or content "
        f"{expected.content_sha256}, {expected.lines} lines)"
    )


def verify_file(root: str | Path, rel: str) -> tuple[bool, str]:
    """Check ``root/rel`` against :data:`CHECKSUMS`; return ``(ok, message)``."""
    path = Path(root) / rel
    raw = path.read_bytes()
    try:
        content = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        return False, f"{rel}: not a valid gzip file ({exc})"
    return _check(rel, raw, content)


def missing_files(name: str, root: str | Path, files: Iterable[str] | None = None) -> list[str]:
    """Relative paths of ``files`` (default: all of corpus ``name``) absent under ``root``."""
    wanted = _wanted(name, files)
    return [rel for rel in wanted if not (Path(root) / rel).is_file()]


def _wanted(name: str, files: Iterable[str] | None) -> tuple[str, ...]:
    if name not in CORPUS_FILES:
        raise CorpusError(
            f"unknown corpus {name!r} to prepare; choose one of {', '.join(PREPARABLE)}."
        )
    if files is None:
        return CORPUS_FILES[name]
    wanted = tuple(files)
    unknown = [f for f in wanted if f not in CORPUS_FILES[name]]
    if unknown:
        raise CorpusError(f"{name}: unknown files {unknown}; known: {list(CORPUS_FILES[name])}")
    return wanted


def prepare_command(name: str, root: str | Path, from_dir: str | None = None) -> str:
    """The shell command that prepares corpus ``name`` under ``root``."""
    cmd = f"python data_scripts/prepare.py {name} --root {root}"
    if from_dir:
        cmd += f" --from-dir {from_dir}"
    return cmd


def _raw_hint(name: str) -> str:
    if name == "multi30k":
        return (
            "the Multi30k raw files {train,val,test_2016_flickr}.{en,de,fr,cs}.gz from "
            + MULTI30K_URL.format(name="")
        )
    return "spa-eng.zip (or its spa.txt) from " + " or ".join(TATOEBA_URLS[:1] + TATOEBA_URLS[2:])


# --------------------------------------------------------------------------- download


def download(url: str, dest: str | Path, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch ``url`` into file ``dest`` (atomically). Network problems raise ``OSError``.

    ``urllib.error.URLError`` and ``TimeoutError`` are subclasses of ``OSError``.
    """
    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (seq2seq prepare)"})
    log.info("downloading %s", url)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        buf = io.BytesIO()
        shutil.copyfileobj(response, buf)
    _atomic_write(dest, buf.getvalue())
    return dest


def fetch_raw(name: str, dest_dir: str | Path, files: Iterable[str] | None = None) -> Path:
    """Download the raw files of corpus ``name`` (for output ``files``) into ``dest_dir``.

    Returns ``dest_dir``, ready for :func:`prepare_corpus` ``from_dir=``. Raises
    ``OSError`` when the network fails (for Tatoeba: when every mirror fails).
    """
    dest_dir = Path(dest_dir)
    wanted = _wanted(name, files)
    if name == "multi30k":
        for rel in wanted:
            raw_name = Path(rel).name
            download(MULTI30K_URL.format(name=raw_name), dest_dir / raw_name)
        return dest_dir
    errors = []
    for url in TATOEBA_URLS:
        try:
            download(url, dest_dir / "spa-eng.zip")
            return dest_dir
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise OSError("could not download spa-eng.zip: " + "; ".join(errors))


# --------------------------------------------------------------------------- prepare


def _find_multi30k_raw(from_dir: Path, raw_name: str) -> Path | None:
    """``{split}.{lang}.gz`` or uncompressed ``{split}.{lang}`` in from_dir or a repo clone."""
    stem = raw_name[: -len(".gz")]
    for folder in (from_dir, from_dir / "data" / "task1" / "raw", from_dir / "multi30k"):
        for candidate in (folder / raw_name, folder / stem):
            if candidate.is_file():
                return candidate
    return None


def _multi30k_outputs(
    from_dir: Path, wanted: Sequence[str], strict: bool
) -> tuple[dict[str, tuple[bytes, bytes]], list[str]]:
    if from_dir.is_file():
        raise CorpusError(
            f"{from_dir}: for multi30k, --from-dir must be a folder holding "
            "{train,val,test_2016_flickr}.{en,de,fr,cs}.gz."
        )
    outputs: dict[str, tuple[bytes, bytes]] = {}
    not_found: list[str] = []
    for rel in wanted:
        raw_name = Path(rel).name
        src = _find_multi30k_raw(from_dir, raw_name)
        if src is None:
            not_found.append(raw_name)
            continue
        content = read_bytes(src)  # decompresses .gz, CorpusError if broken
        decode_text(content, src)  # CorpusError naming file:line if not UTF-8
        file_bytes = src.read_bytes() if src.suffix == ".gz" else gzip_bytes(content)
        outputs[rel] = (file_bytes, content)
    if not_found and (strict or not outputs):
        raise CorpusError(
            f"{from_dir}: missing Multi30k raw files {', '.join(not_found)} (looked in "
            f"{from_dir} and {from_dir / 'data/task1/raw'}). Download "
            f"{_raw_hint('multi30k')}<name>."
        )
    return outputs, not_found


def _find_spa_txt(from_path: Path) -> tuple[bytes, str]:
    """Return the bytes of ``spa.txt`` from a zip, a txt file, or a folder holding either."""
    candidates: list[Path]
    if from_path.is_file():
        candidates = [from_path]
    else:
        candidates = [
            from_path / "spa-eng.zip",
            from_path / "spa.txt",
            from_path / "spa-eng" / "spa.txt",
        ]
    for cand in candidates:
        if not cand.is_file():
            continue
        if zipfile.is_zipfile(cand):
            try:
                with zipfile.ZipFile(cand) as zf:
                    members = [m for m in zf.namelist() if Path(m).name == "spa.txt"]
                    if len(members) != 1:
                        raise CorpusError(
                            f"{cand}: expected exactly one member named spa.txt, found "
                            f"{members or 'none'} among {zf.namelist()[:10]}. Is this the "
                            "manythings spa-eng.zip?"
                        )
                    return zf.read(members[0]), f"{cand}!{members[0]}"
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                raise CorpusError(f"{cand}: broken zip file ({exc}); download it again.") from exc
        return read_bytes(cand), str(cand)
    raise CorpusError(
        f"{from_path}: no spa-eng.zip or spa.txt found (looked for "
        f"{', '.join(str(c) for c in candidates)}). Download {_raw_hint('tatoeba_en_es')}."
    )


def _tatoeba_outputs(from_path: Path) -> dict[str, tuple[bytes, bytes]]:
    data, origin = _find_spa_txt(from_path)
    en_lines: list[str] = []
    es_lines: list[str] = []
    for i, line in enumerate(split_lines(decode_text(data, origin)), start=1):
        fields = line.split("\t")
        if len(fields) < 2:
            raise CorpusError(
                f"{origin}:{i}: expected 'english<TAB>spanish[<TAB>attribution]' but found "
                f"{len(fields)} column(s): {line[:80]!r}. Is this the manythings spa.txt?"
            )
        en_lines.append(fields[0])
        es_lines.append(fields[1])
    outputs = {}
    for lang, lines in (("en", en_lines), ("es", es_lines)):
        content = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        outputs[f"{TATOEBA_PREFIX}.{lang}.gz"] = (gzip_bytes(content), content)
    return outputs


def prepare_corpus(
    name: str,
    root: str | Path,
    *,
    from_dir: str | Path | None = None,
    verify: bool = True,
    force: bool = False,
    files: Iterable[str] | None = None,
) -> list[Path]:
    """Prepare corpus ``name`` under ``root`` and return the paths written or already valid.

    ``from_dir``: a folder (or, for Tatoeba, a ``spa-eng.zip``/``spa.txt`` file) with
    already-downloaded raw files; ``None`` downloads them first. ``files``: the
    output paths (relative to root) to produce; by default all of the corpus, where
    Multi30k files absent from ``from_dir`` are skipped with a warning (an explicit
    list makes each one required). Existing outputs that pass verification are kept
    unless ``force``. A checksum mismatch raises :class:`CorpusError` and writes
    nothing, unless ``verify=False`` (then it is a warning).
    """
    root = Path(root).expanduser()
    strict = files is not None
    wanted = _wanted(name, files)
    if not force:
        todo = []
        for rel in wanted:
            if (root / rel).is_file() and (not verify or verify_file(root, rel)[0]):
                log.info("%s: already prepared", root / rel)
            else:
                todo.append(rel)
        if not todo:
            return [root / rel for rel in wanted]
        wanted = tuple(todo)
    if from_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"seq2seq-{name}-") as tmp:
            fetch_raw(name, tmp, wanted)
            return prepare_corpus(name, root, from_dir=tmp, verify=verify, force=True, files=wanted)

    from_path = Path(from_dir).expanduser()
    if not from_path.exists():
        raise CorpusError(
            f"{from_path}: --from-dir not found; give the folder or file you downloaded."
        )
    if name == "multi30k":
        outputs, skipped = _multi30k_outputs(from_path, wanted, strict)
        if skipped:
            log.warning("multi30k: not in %s, not prepared: %s", from_path, ", ".join(skipped))
    else:
        outputs = _tatoeba_outputs(from_path)

    # Verify everything before writing anything.
    problems = []
    for rel, (file_bytes, content) in outputs.items():
        ok, message = _check(rel, file_bytes, content)
        if ok:
            log.debug("%s", message)
        else:
            problems.append(message)
    if problems:
        text = "; ".join(problems)
        if verify:
            raise CorpusError(
                f"{name}: prepared data does not match the published checksums, nothing was "
                f"written: {text}. The raw files from {from_path} are probably a different "
                "release or corrupted: download them again (see data_scripts/prepare.py "
                "--help), or pass --no-verify (verify=False) to use them anyway."
            )
        log.warning("%s: --no-verify: keeping files that differ from the checksums: %s", name, text)

    written = []
    for rel, (file_bytes, _content) in outputs.items():
        dest = root / rel
        try:
            _atomic_write(dest, file_bytes)
        except OSError as exc:
            raise CorpusError(
                f"{dest}: cannot write prepared file ({exc}); choose a writable --root "
                "(data.root / SEQ2SEQ_DATA)."
            ) from exc
        log.info("wrote %s", dest)
        written.append(dest)
    return written


def ensure_corpus(
    name: str, root: str | Path, files: Iterable[str] | None = None, *, download: bool = True
) -> None:
    """Make sure ``files`` (default: all) of corpus ``name`` exist under ``root``.

    Missing files are downloaded and prepared (:func:`prepare_corpus`). When the
    download fails (offline) — or ``download=False``, or ``$SEQ2SEQ_OFFLINE`` is set —
    this raises :class:`CorpusError` at once, naming the missing files and the
    commands that prepare them.
    """
    root = Path(root).expanduser()
    missing = missing_files(name, root, files)
    if not missing:
        return
    cause = "downloads are disabled"
    if download and not os.environ.get("SEQ2SEQ_OFFLINE"):
        with tempfile.TemporaryDirectory(prefix=f"seq2seq-{name}-") as tmp:
            try:
                fetch_raw(name, tmp, missing)
            except OSError as exc:
                cause = f"download failed: {exc}"
            else:
                prepare_corpus(name, root, from_dir=tmp, files=missing, force=True)
                return
    shown = "\n".join(f"  {root / rel}" for rel in missing)
    raise CorpusError(
        f"corpus {name!r} is missing {len(missing)} file(s) under data root {root} "
        f"({cause}):\n{shown}\n"
        f"Prepare it on a machine with internet:\n  {prepare_command(name, root)}\n"
        f"or, offline, from already-downloaded files ({_raw_hint(name)}):\n"
        f"  {prepare_command(name, root, 'DOWNLOADED_DIR_OR_FILE')}\n"
        "(`python -m seq2seq.data.prepare` takes the same arguments). Or point data.root / "
        "SEQ2SEQ_DATA at a folder that already holds the corpus."
    )


# --------------------------------------------------------------------------- CLI


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepare.py",
        description="Download (or take already-downloaded files) and prepare public corpora "
        "into the SEQ2SEQ_DATA layout, verifying SHA-256 checksums.",
        epilog="examples:\n"
        "  python data_scripts/prepare.py all --root data\n"
        "  python data_scripts/prepare.py multi30k --root data --from-dir ~/Downloads/multi30k\n"
        "  python data_scripts/prepare.py tatoeba_en_es --root data --from-dir spa-eng.zip\n"
        "sources: " + _raw_hint("multi30k") + "; " + _raw_hint("tatoeba_en_es"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpus", choices=[*PREPARABLE, "all"], help="corpus to prepare")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data root to write into (default: $SEQ2SEQ_DATA, else ./data)",
    )
    parser.add_argument(
        "--from-dir",
        default=None,
        help="offline: folder (or spa-eng.zip / spa.txt file) with already-downloaded raw files",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="keep files whose checksums differ (warn only)"
    )
    parser.add_argument(
        "--force", action="store_true", help="re-prepare files that already exist and verify"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s"
    )
    root = args.root if args.root is not None else default_root()
    names = PREPARABLE if args.corpus == "all" else (args.corpus,)
    status = 0
    for name in names:
        try:
            paths = prepare_corpus(
                name, root, from_dir=args.from_dir, verify=not args.no_verify, force=args.force
            )
        except CorpusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
        except OSError as exc:
            print(
                f"error: {name}: download failed ({exc}). Without internet, download "
                f"{_raw_hint(name)} elsewhere and run:\n  "
                f"{prepare_command(name, root, 'DOWNLOADED_DIR_OR_FILE')}",
                file=sys.stderr,
            )
            status = 1
        else:
            if not args.quiet:
                print(f"{name}: {len(paths)} file(s) ready under {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
