"""Fetching raw corpus files, written atomically so that an interrupted run leaves no half file.

Network problems raise ``OSError`` (``urllib.error.URLError`` and ``TimeoutError``
are subclasses), which callers turn into a message saying how to prepare the
corpus offline.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DOWNLOAD_TIMEOUT", "atomic_write", "fetch", "fetch_first"]

log = logging.getLogger(__name__)

#: seconds for each network operation (connect, each read); keeps offline failure quick.
DOWNLOAD_TIMEOUT = 10.0


def atomic_write(path: Path, data: bytes) -> None:
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


def fetch(url: str, dest: str | Path, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Download ``url`` into the file ``dest`` (atomically) and return ``dest``."""
    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (seq2seq prepare)"})
    log.info("downloading %s", url)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        buf = io.BytesIO()
        shutil.copyfileobj(response, buf)
    atomic_write(dest, buf.getvalue())
    return dest


def fetch_first(urls: Sequence[str], dest: str | Path) -> Path:
    """Download from the first mirror in ``urls`` that answers; ``OSError`` lists each failure."""
    errors = []
    for url in urls:
        try:
            return fetch(url, dest)
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise OSError(f"could not download {Path(dest).name}: " + "; ".join(errors))
