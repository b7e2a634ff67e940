"""Read leases on checkpoint folders, so a reader (``vlkd eval RUN`` while the run trains, or a
resume) never has its checkpoint pruned under it.

Each checkpoint folder holds an empty ``.lease`` file. A reader takes a shared ``flock`` on it; the
writer prunes a folder only after taking an exclusive, non-blocking ``flock`` on it (and then
renames the folder away before deleting it), so it skips folders a reader holds and prunes them at
a later save. Locks vanish with the process that held them, so a killed reader never blocks
pruning. Folders without a ``.lease`` (written by older versions) are read without one.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

LEASE = ".lease"
_held: dict[str, int] = {}  # folder -> fd of this process's shared lease


def acquire(folder: Path) -> bool:
    """Take a shared lease on ``folder``. False if it is gone or being pruned right now."""
    key = str(Path(folder).resolve())
    if key in _held:
        return True
    path = Path(folder) / LEASE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # a planted link is never opened
    except FileNotFoundError:
        return Path(folder).is_dir() and not path.exists() and _legacy(folder)
    except OSError:
        return Path(folder).is_dir()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:  # renamed away before we got the lease
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):  # being pruned right now
        os.close(fd)
        return False
    except OSError:  # a file system without flock: read without a lease
        os.close(fd)
        return True
    _held[key] = fd
    return True


def _legacy(folder: Path) -> bool:
    return (Path(folder) / "weights.safetensors").exists()


def release(folder: Path | None = None) -> None:
    """Drop this process's lease on ``folder`` (all leases when None)."""
    keys = list(_held) if folder is None else [str(Path(folder).resolve())]
    for key in keys:
        fd = _held.pop(key, None)
        if fd is not None:
            os.close(fd)


def try_exclusive(folder: Path) -> int | None:
    """For the pruner: an fd holding an exclusive lock on ``folder``'s lease, or None while a
    reader holds it. Folders without a lease file get -1 (nothing to lock)."""
    try:
        fd = os.open(Path(folder) / LEASE, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return -1
    except OSError:  # a link in place of the lease: nothing of ours to lock
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:  # a file system without flock: nothing to wait for
        os.close(fd)
        return -1
    return fd
