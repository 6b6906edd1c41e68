"""Prepare public corpora into the ``$SEQ2SEQ_DATA`` layout, with checksums.

Layout written under the data root (gzip-compressed UTF-8, one sentence per line)::

    multi30k/{train,val,test_2016_flickr}.{en,de,fr,cs}.gz
    en_es/manythings-spa-eng-2018.all.{en,es}.gz

Each corpus (:mod:`seq2seq.data.corpora`) says which files it has, where their
raw downloads come from and how to turn those into the prepared files; this
module runs those steps safely: files that already verify are kept, every new
file is checked against the corpus's checksums before anything is written, and
files are written atomically.

Command line (also ``python data_scripts/prepare.py``)::

    python -m seq2seq.data.prepare {multi30k,tatoeba_en_es,all} --root DIR [--from-dir DIR_OR_FILE]

``--from-dir`` is the offline path: a folder (or file) holding already-downloaded
raw files — Multi30k ``{split}.{lang}.gz`` (or uncompressed ``{split}.{lang}``),
or ``spa-eng.zip`` / ``spa.txt``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.data.checksums import check, verify_file
from seq2seq.data.download import atomic_write
from seq2seq.data.reading import CorpusError

if TYPE_CHECKING:  # the corpora call into this module to fetch their missing files
    from seq2seq.data.corpora.base import PublicCorpus

__all__ = [
    "ensure_corpus",
    "missing_files",
    "prepare_command",
    "prepare_corpus",
]

log = logging.getLogger(__name__)


def prepare_command(name: str, root: str | Path, from_dir: str | None = None) -> str:
    """The shell command that prepares corpus ``name`` under ``root``."""
    cmd = f"python data_scripts/prepare.py {name} --root {root}"
    if from_dir:
        cmd += f" --from-dir {from_dir}"
    return cmd


def _wanted(corpus: PublicCorpus, files: Iterable[str] | None) -> tuple[str, ...]:
    if files is None:
        return corpus.files
    wanted = tuple(files)
    unknown = [f for f in wanted if f not in corpus.checksums]
    if unknown:
        raise CorpusError(f"{corpus.name}: unknown files {unknown}; known: {list(corpus.files)}")
    return wanted


def missing_files(
    corpus: PublicCorpus, root: str | Path, files: Iterable[str] | None = None
) -> list[str]:
    """Relative paths of ``files`` (default: all of ``corpus``) absent under ``root``."""
    return [rel for rel in _wanted(corpus, files) if not (Path(root) / rel).is_file()]


def prepare_corpus(
    corpus: PublicCorpus,
    root: str | Path,
    *,
    from_dir: str | Path | None = None,
    verify: bool = True,
    force: bool = False,
    files: Iterable[str] | None = None,
) -> list[Path]:
    """Prepare ``corpus`` under ``root`` and return the paths written or already valid.

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
    wanted = _wanted(corpus, files)
    if not force:
        todo = []
        for rel in wanted:
            if (root / rel).is_file() and (
                not verify or verify_file(root, rel, corpus.checksums[rel])[0]
            ):
                log.info("%s: already prepared", root / rel)
            else:
                todo.append(rel)
        if not todo:
            return [root / rel for rel in wanted]
        wanted = tuple(todo)
    if from_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"seq2seq-{corpus.name}-") as tmp:
            corpus.fetch_raw(Path(tmp), wanted)
            return prepare_corpus(
                corpus, root, from_dir=tmp, verify=verify, force=True, files=wanted
            )

    from_path = Path(from_dir).expanduser()
    if not from_path.exists():
        raise CorpusError(
            f"{from_path}: --from-dir not found; give the folder or file you downloaded."
        )
    prepared = corpus.prepare_from(from_path, wanted, strict)
    if prepared.not_found:
        log.warning(
            "%s: not in %s, not prepared: %s",
            corpus.name,
            from_path,
            ", ".join(prepared.not_found),
        )

    # Verify everything before writing anything.
    problems = []
    for rel, (file_bytes, content) in prepared.outputs.items():
        ok, message = check(rel, file_bytes, content, corpus.checksums.get(rel))
        if ok:
            log.debug("%s", message)
        else:
            problems.append(message)
    if problems:
        text = "; ".join(problems)
        if verify:
            raise CorpusError(
                f"{corpus.name}: prepared data does not match the published checksums, nothing "
                f"was written: {text}. The raw files from {from_path} are probably a different "
                "release or corrupted: download them again (see data_scripts/prepare.py "
                "--help), or pass --no-verify (verify=False) to use them anyway."
            )
        log.warning(
            "%s: --no-verify: keeping files that differ from the checksums: %s", corpus.name, text
        )

    written = []
    for rel, (file_bytes, _content) in prepared.outputs.items():
        dest = root / rel
        try:
            atomic_write(dest, file_bytes)
        except OSError as exc:
            raise CorpusError(
                f"{dest}: cannot write prepared file ({exc}); choose a writable --root "
                "(data.root / SEQ2SEQ_DATA)."
            ) from exc
        log.info("wrote %s", dest)
        written.append(dest)
    return written


def ensure_corpus(
    corpus: PublicCorpus,
    root: str | Path,
    files: Iterable[str] | None = None,
    *,
    download: bool = True,
) -> None:
    """Make sure ``files`` (default: all) of ``corpus`` exist under ``root``.

    Missing files are downloaded and prepared (:func:`prepare_corpus`). When the
    download fails (offline) — or ``download=False``, or ``$SEQ2SEQ_OFFLINE`` is set —
    this raises :class:`CorpusError` at once, naming the missing files and the
    commands that prepare them.
    """
    root = Path(root).expanduser()
    missing = missing_files(corpus, root, files)
    if not missing:
        return
    cause = "downloads are disabled"
    if download and not os.environ.get("SEQ2SEQ_OFFLINE"):
        with tempfile.TemporaryDirectory(prefix=f"seq2seq-{corpus.name}-") as tmp:
            try:
                corpus.fetch_raw(Path(tmp), missing)
            except OSError as exc:
                cause = f"download failed: {exc}"
            else:
                prepare_corpus(corpus, root, from_dir=tmp, files=missing, force=True)
                return
    shown = "\n".join(f"  {root / rel}" for rel in missing)
    raise CorpusError(
        f"corpus {corpus.name!r} is missing {len(missing)} file(s) under data root {root} "
        f"({cause}):\n{shown}\n"
        f"Prepare it on a machine with internet:\n  {prepare_command(corpus.name, root)}\n"
        f"or, offline, from already-downloaded files ({corpus.sources}):\n"
        f"  {prepare_command(corpus.name, root, 'DOWNLOADED_DIR_OR_FILE')}\n"
        "(`python -m seq2seq.data.prepare` takes the same arguments). Or point data.root / "
        "SEQ2SEQ_DATA at a folder that already holds the corpus."
    )


if __name__ == "__main__":  # `python -m seq2seq.data.prepare`: the command line
    from seq2seq.commands.prepare import main

    sys.exit(main())
