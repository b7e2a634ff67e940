"""The files of folders vlkd wrote (runs, checkpoints, feature stores, exports), read as data that
may come from someone else, and written without following a link.

A name read from one of them (``LATEST``, a manifest entry, a shard name) is an *entry*: a plain
name of a regular file or a folder directly inside that folder, never a path, ``..``, a hidden
name or a symbolic link; text is UTF-8 and JSON an object. Every problem is one line naming the
file and what it holds. Writes go to a fresh temporary file that then replaces the target
(:func:`write_atomic`), or append to a file that is not a link (:func:`append_text`), so a
planted link is replaced, never written through.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import UsageError

ENTRY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")  # no '/', no leading '.': never '..'
SHOWN = 48  # bytes of a bad file quoted in a message


def shown(data: bytes | str) -> str:
    """What a file holds, for a one-line message: printable, on one line, cut short."""
    text = data if isinstance(data, str) else data[:SHOWN * 2].decode("utf-8", "backslashreplace")
    text = text.strip().encode("unicode_escape").decode("ascii")
    return repr(text[:SHOWN] + ("..." if len(text) > SHOWN else ""))


def is_entry(name: Any) -> bool:
    return isinstance(name, str) and ENTRY.fullmatch(name) is not None


def is_regular(path: Path) -> bool:
    """A regular file, not a link (nor a folder, pipe or device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_real_dir(path: Path) -> bool:
    """A folder, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def entry(folder: Path, name: Any, where: Path, what: str = "a file name") -> Path:
    """``folder / name`` when ``name`` is an entry; else a one-line error naming ``where``, the
    file that holds the name."""
    if not is_entry(name):
        raise UsageError(f"'{where}' names {shown(str(name))}, not {what} inside '{folder}'")
    return Path(folder) / name


def read_bytes(path: Path, follow: bool = False) -> bytes:
    """A regular file's bytes; a link (unless ``follow``: a path the user typed), a folder or a
    missing file is a one-line error."""
    path = Path(path)
    if not (path.is_file() if follow else is_regular(path)):
        kind = "a symbolic link" if path.is_symlink() and not follow else \
            "missing" if not path.exists() else "not a file"
        raise UsageError(f"'{path}' is {kind}; " + ("expected a file" if follow else "a vlkd folder holds plain files"))
    fd = os.open(path, os.O_RDONLY | (0 if follow else os.O_NOFOLLOW))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def read_text(path: Path, follow: bool = False) -> str:
    data = read_bytes(path, follow)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"'{path}' is not UTF-8 text (it holds {shown(data)})") from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object; anything else is a one-line error naming the file."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(f"'{path}' is not JSON (it holds {shown(text)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"'{path}' holds {type(data).__name__}, not a JSON object")
    return data


def write_atomic(path: Path, data: str | bytes, durable: bool = True) -> None:
    """``path`` whole or unchanged: a fresh temporary file (never an existing one, so never a
    planted link), fsynced when ``durable``, renamed over ``path`` (a link there is replaced)."""
    from .durable import fsync
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync(path.parent)


def append_text(path: Path, text: str) -> None:
    """Append to ``path`` (created when missing); a link there is a one-line error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if Path(path).is_symlink():
            raise UsageError(f"'{path}' is a symbolic link; vlkd does not write through it") from None
        raise exc
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)


def first_link(folder: Path) -> Path | None:
    """The first symbolic link or special file (pipe, socket, device) under ``folder``, which is
    walked without following links; None when it holds only files and folders."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if not (is_regular(path) or is_real_dir(path)):
                return path
    return None
