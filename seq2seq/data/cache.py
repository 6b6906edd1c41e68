"""A disk cache for trained tokenizers and tokenized training data (Arrow).

Training a sentencepiece model and tokenizing a corpus take a large part of a
short run's start-up (about 25 s of a 12-minute Multi30k run on 2 cores). Both are
pure functions of the training text and the tokenizer settings, so their results
are stored under a key made of exactly those: a changed corpus, vocabulary size
or option gives a new key, never a stale hit. Entries are written atomically; a
damaged entry is ignored (with a warning) and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import datasets

from seq2seq.tokenizers.files import from_json_safe, json_safe

log = logging.getLogger(__name__)

FORMAT = 1


OFF = ("", "0", "off", "none", "false")


def resolve_cache_dir(value: str | os.PathLike | None) -> Path | None:
    """`data.cache_dir`: a folder; "off" disables; null means $SEQ2SEQ_CACHE (same
    rules), else ~/.cache/seq2seq."""
    if value is None:
        value = os.environ.get("SEQ2SEQ_CACHE")
        if value is None:
            return Path.home() / ".cache" / "seq2seq"
    if str(value).strip().lower() in OFF:
        return None
    return Path(value).expanduser()


def text_key(*parts: Any) -> str:
    """A stable digest of settings (JSON-able values) and lists of lines."""
    digest = hashlib.sha256(f"seq2seq-cache-{FORMAT}".encode())
    for part in parts:
        if isinstance(part, list):
            digest.update(b"\x00lines")
            for line in part:
                digest.update(line.encode("utf-8", "surrogatepass"))
                digest.update(b"\n")
        else:
            digest.update(b"\x00" + json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


class DataCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def load_json(self, kind: str, key: str) -> Any | None:
        path = self.root / kind / f"{key}.json"
        if not path.exists():
            return None
        try:
            return from_json_safe(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            log.warning("cache: ignoring unreadable %s (%s); rebuilding it", path, exc)
            return None

    def save_json(self, kind: str, key: str, value: Any) -> None:
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=folder, suffix=".tmp", delete=False, encoding="utf-8"
            ) as tmp:
                json.dump(json_safe(value), tmp)
            os.replace(tmp.name, folder / f"{key}.json")
        except OSError as exc:  # a cache must never stop a run
            log.warning("cache: could not write %s (%s)", folder / f"{key}.json", exc)

    def load_table(self, key: str) -> datasets.Dataset | None:
        path = self.root / "tokenized" / key
        if not path.exists():
            return None
        try:
            return datasets.load_from_disk(str(path), keep_in_memory=True)
        except Exception as exc:  # damaged entry: rebuild
            log.warning("cache: ignoring unreadable %s (%s); rebuilding it", path, exc)
            return None

    def save_table(self, key: str, table: datasets.Dataset) -> None:
        folder = self.root / "tokenized"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder, suffix=".tmp"))
            table.save_to_disk(str(tmp))
            target = folder / key
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("cache: could not write %s (%s)", folder / key, exc)
