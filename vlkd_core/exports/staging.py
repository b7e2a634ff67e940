"""Writing an export folder so that a partly written one never looks complete: everything goes
into a hidden sibling folder, ``vlkd_export.json`` is written last, and only then does the folder
take the place of ``--out`` in one atomic swap, so a failure or a kill keeps the old export.
``--overwrite`` replaces only what vlkd wrote there before (:mod:`vlkd_core._runfiles.folders`); the hidden
folders a killed export left behind are removed by the next export into the same place."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .._runfiles.durable import exchange
from .._runfiles.folders import EXPORT, claim
from .._runfiles.storage import write_errors

PARTIAL, OLD = "partial", "old"  # .NAME.partial-PID (being written), .NAME.old-PID (being removed)


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, a run, checkpoint or feature store, lies inside one, or
    is a non-empty folder other than a previous export (which needs ``--overwrite``)."""
    claim(out, "--out", EXPORT, overwrite=overwrite)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(out: Path) -> None:
    """Delete the hidden folders of exports into ``out`` whose process is gone (killed)."""
    for kind in (PARTIAL, OLD):
        for junk in out.parent.glob(f".{out.name}.{kind}-*"):
            pid = junk.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)) and not junk.is_symlink():
                shutil.rmtree(junk, ignore_errors=True)


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``out``; it takes ``out``'s place when the block succeeds and
    is deleted when it fails. A full disk or a read-only folder is a one-line error."""
    tmp = out.parent / f".{out.name}.{PARTIAL}-{os.getpid()}"
    with write_errors(f"export '{out}'", out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    try:
        with write_errors(f"export '{out}'", tmp):
            yield tmp
            _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
    elif exchange(tmp, out):  # checked by check_target: empty, or a previous export
        shutil.rmtree(tmp, ignore_errors=True)  # now the old export
    else:  # no atomic swap here: the old export waits under a hidden name for a moment
        old = out.parent / f".{out.name}.{OLD}-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)


def write_info(folder: Path, name: str, info: dict) -> None:
    """``vlkd_export.json``: the format and what its files hold (written last, so its presence
    means the folder is complete)."""
    text = json.dumps({"format": name, **info}, indent=2, default=str)
    with open(folder / "vlkd_export.json", "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
