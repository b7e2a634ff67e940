"""Writing an export folder so that a partly written one never looks complete: everything goes
into a hidden sibling folder, ``vlkd_export.json`` is written last, and only then is the folder
renamed to ``--out`` (replacing an old export only with ``--overwrite``)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder without ``--overwrite``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out '{out}' exists and is not empty; pass --overwrite to replace it")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``out``; renamed to ``out`` when the block succeeds, deleted
    when it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():  # checked by check_target: empty, or --overwrite
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_info(folder: Path, name: str, info: dict) -> None:
    """``vlkd_export.json``: the format and what its files hold (written last, so its presence
    means the folder is complete)."""
    text = json.dumps({"format": name, **info}, indent=2, default=str)
    with open(folder / "vlkd_export.json", "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
