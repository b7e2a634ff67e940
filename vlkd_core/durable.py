"""Files that survive a crash: checksums, fsync, atomic publication (checkpoints, feature stores)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it to ``path``, fsync the folder: ``path`` is whole or absent."""
    fsync(tmp)
    os.replace(tmp, path)
    fsync(path.parent)
