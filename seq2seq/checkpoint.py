"""Checkpoints: self-contained, written atomically, loaded without executing code."""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

FORMAT = "seq2seq-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted, foreign or unsafe."""


class CheckpointWriteError(CheckpointError):
    """The operating system refused a checkpoint write (full disk, quota, permissions).

    `errno` is the OS error number (errno.ENOSPC for a full disk). The previous file
    at the path, if any, is untouched and no temporary file is left behind.
    """

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


_REASONS = {errno.ENOSPC: "no space left on device"}
if hasattr(errno, "EDQUOT"):  # not on every platform
    _REASONS[errno.EDQUOT] = "disk quota exceeded"


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`. torch.save masks a failed write of its file object
    (e.g. ENOSPC) with a RuntimeError ('unexpected pos …') raised while closing the
    archive; the OSError is still there as its __context__."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _open_for_writing(fd: int):
    """The temporary file's writer (a seam for fault-injection tests)."""
    return os.fdopen(fd, "wb")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash or a full disk during the write leaves the previous file intact, and the
    temporary file is removed. A write the OS refuses (no space left, quota, permissions)
    is a CheckpointWriteError naming `path` and the reason.
    """
    import torch

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        # mkstemp makes the file private (0600); give the checkpoint the permissions of
        # any file the user writes (0666 less the umask), as a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with _open_for_writing(fd) as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = _os_error_in(exc) if isinstance(exc, Exception) else None
        if cause is None:
            raise
        reason = _REASONS.get(cause.errno) or (cause.strerror or str(cause)).lower()
        kept = f"the previous {path.name} is untouched" if path.exists() else "nothing was written"
        raise CheckpointWriteError(
            f"cannot write checkpoint {path}: {reason}; {kept} and no partial file was left",
            cause.errno,
        ) from exc
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# A run folder's checkpoints, in the order a folder given as --checkpoint is read.
RUN_CHECKPOINTS = (
    "checkpoints/best.pt",
    "best.pt",
    "checkpoints/averaged.pt",
    "checkpoints/last.pt",
)


def checkpoint_in(folder: Path) -> Path:
    """The checkpoint a folder stands for: the first of RUN_CHECKPOINTS that exists."""
    tried = [folder / name for name in RUN_CHECKPOINTS]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"no checkpoint in {folder}: tried {', '.join(map(str, tried))}, and "
        f"{folder / 'config.json'} with {folder / 'model.safetensors'} (an exported model "
        "folder). Training writes checkpoints/ after its first checkpoint_every updates."
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with `weights_only=True`: tensors and plain data only, never code."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = checkpoint_in(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_file() and not zipfile.is_zipfile(path):
        # save_checkpoint always writes torch's zip archive: anything else (a file cut
        # short, which loses the archive's directory at its end, or some other file
        # named by mistake) would otherwise reach the legacy unpickler and be reported
        # as unsafe rather than as what it is.
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupted, or not a checkpoint at all "
            f"({path.stat().st_size} bytes, not the zip archive seq2seq writes). "
            "Use another checkpoint (e.g. checkpoints/best.pt or an older last.pt)."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it contains objects other than tensors and plain data "
            f"(loading it could run code). Only load checkpoints written by seq2seq. Detail: {exc}"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupted ({type(exc).__name__}: {exc}). "
            "Use another checkpoint (e.g. checkpoints/best.pt or an older last.pt)."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seq2seq checkpoint (expected format {FORMAT})")
    return payload
