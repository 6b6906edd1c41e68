"""SHA-256 checksums of prepared corpus files, and the deterministic gzip that reproduces them.

A prepared file passes when either the SHA-256 of its bytes or that of its
uncompressed content matches: gzip bytes depend on the compressor, the content
does not.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileChecksum", "check", "gzip_bytes", "sha256", "verify_file"]


@dataclass(frozen=True)
class FileChecksum:
    """Expected line count and SHA-256 digests of one prepared file."""

    lines: int
    sha256: str  # of the file as stored (gzip bytes)
    content_sha256: str  # of the uncompressed content


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no name, mtime 0, level 9), byte for byte what ``gzip -9n`` writes.

    ``gzip.compress`` uses a smaller zlib memory level, so its bytes would not
    reproduce the published file checksums.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)
    return compressor.compress(data) + compressor.flush()


def check(
    rel: str, file_bytes: bytes, content: bytes, expected: FileChecksum | None
) -> tuple[bool, str]:
    """Compare one file (named ``rel`` in messages) with ``expected``; return ``(ok, message)``."""
    if expected is None:
        return True, f"{rel}: no checksum on record"
    if sha256(file_bytes) == expected.sha256:
        return True, f"{rel}: checksum OK"
    if sha256(content) == expected.content_sha256:
        return True, f"{rel}: content checksum OK (gzip bytes differ: another compressor)"
    lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return False, (
        f"{rel}: checksum mismatch (SHA-256 {sha256(file_bytes)}, content SHA-256 "
        f"{sha256(content)}, {lines} lines; expected {expected.sha256} or content "
        f"{expected.content_sha256}, {expected.lines} lines)"
    )


def verify_file(root: str | Path, rel: str, expected: FileChecksum | None) -> tuple[bool, str]:
    """Check the file ``root/rel`` against ``expected``; return ``(ok, message)``."""
    path = Path(root) / rel
    raw = path.read_bytes()
    try:
        content = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        return False, f"{rel}: not a valid gzip file ({exc})"
    return check(rel, raw, content, expected)
