"""When the file system refuses a write (the disk is full, a folder is read-only, a permission
is missing), one line says so and names what was being written, whichever library was writing:
Python's ``OSError``, safetensors' "I/O error ... (os error 28)", or any other error raised while
the target's file system has no space left (torch's "unexpected pos" says nothing of it)."""
from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import StorageError, VlkdError

DISK_FULL = "disk full"
BY_ERRNO = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EFBIG: "file too large for this file system"}
BY_TEXT = {"No space left on device": DISK_FULL, "os error 28": DISK_FULL, "Disk quota exceeded": DISK_FULL,
           "Read-only file system": BY_ERRNO[errno.EROFS], "os error 30": BY_ERRNO[errno.EROFS],
           "Permission denied": BY_ERRNO[errno.EACCES], "os error 13": BY_ERRNO[errno.EACCES]}
ALMOST_FULL = 1 << 20  # bytes free below which a failed write is taken for a full disk
ADVICE = {DISK_FULL: "free some space and run the same command again"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def _free_bytes(folder: Path | None) -> int | None:
    for place in ([folder, *folder.parents] if folder is not None else []):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return None


def reason(exc: BaseException, folder: Path | None = None) -> tuple[str, str | None] | None:
    """(why the write failed, the file named by the error) when the file system refused it."""
    for link in _chain(exc):
        why = BY_ERRNO.get(getattr(link, "errno", None))
        why = why or next((w for text, w in BY_TEXT.items() if text in str(link)), None)
        if why:
            return why, getattr(link, "filename", None)
    free = _free_bytes(folder)
    if free is not None and free < ALMOST_FULL:
        return DISK_FULL, None
    return None


@contextlib.contextmanager
def write_errors(what: str, folder: Path | str | None = None) -> Iterator[None]:
    """Inside the block, a refused write becomes a one-line :class:`StorageError` naming ``what``
    (e.g. "checkpoint 'runs/a/checkpoints/step-0000004'"); ``folder`` is where the files go, whose
    free space is checked when the error itself does not say why."""
    try:
        yield
    except VlkdError:
        raise
    except Exception as exc:
        found = reason(exc, Path(folder) if folder is not None else None)
        if found is None:
            raise
        why, name = found
        named = f" ('{name}')" if name else ""
        advice = ADVICE.get(why, "choose a folder you can write to")
        raise StorageError(f"{why}: cannot write {what}{named}; {advice}") from None
