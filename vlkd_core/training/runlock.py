"""One training per run folder: an exclusive ``flock`` on ``RUN/.lock`` for the whole run.

The lock file records the holder's pid and host, so a second training with the same ``--name``
fails at once with a one-line error naming the holder. The operating system drops a ``flock``
when its process dies, so the lock of a killed run (SIGKILL, power loss of the holder) is stale
by construction: the next training takes it over, and says so.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from ..errors import UsageError, VlkdError

LOCK = ".lock"


class RunLockedError(VlkdError):
    """Another live training holds the run folder (exit code 3)."""

    exit_code = 3


def _describe(record: dict) -> str:
    host = record.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"pid {record.get('pid', '?')}{where}"


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    try:
        return json.loads(data) if data.strip() else {}
    except ValueError:
        return {}


def _in_use(run_dir: Path, record: dict) -> RunLockedError:
    return RunLockedError(f"run '{run_dir}' is in use by another training ({_describe(record)}); "
                          "wait for it to finish, stop it, or choose another --name")


def locked_error(run_dir: Path) -> RunLockedError | None:
    """The error to raise if another live process holds ``run_dir``'s lock, else None."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _in_use(run_dir, _read(fd))
    except OSError:  # a file system without flock: RunLock warns
        return None
    finally:
        os.close(fd)


class RunLock:
    """Context manager holding the run folder's lock."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:  # never through a link planted in a received run folder
            fd = os.open(self.run_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise UsageError(f"'{self.run_dir / LOCK}' is a symbolic link, not a lock file vlkd wrote") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read(fd)
            os.close(fd)
            raise _in_use(self.run_dir, record) from None
        except OSError as exc:  # e.g. some network file systems
            os.close(fd)
            print(f"warning: cannot lock run '{self.run_dir}' ({exc.strerror}); nothing stops a "
                  "second training with the same --name", file=sys.stderr, flush=True)
            return self
        stale = _read(fd)
        if stale:  # a holder that ended without releasing: killed
            print(f"note: run '{self.run_dir}' was locked by {_describe(stale)}, which is no longer "
                  "running; taking the lock over", file=sys.stderr, flush=True)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # an empty lock file marks a clean release
            os.close(self.fd)
            self.fd = None
