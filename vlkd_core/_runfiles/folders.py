"""What a folder is, and whether a command may write into it or replace it: the one rule of every
command that writes into a folder the user names (``export --out``, ``features extract --out``,
``data to-webdataset OUT_DIR``, ``plugins new --output-dir``, ``train --output-dir/--name``).

A folder is a *run*, a *checkpoint*, a *feature store* or an *export* by the files vlkd writes
there (:func:`kind_of`). A command
- writes only into a folder that is not, and does not lie inside, one of those, except a folder
  of its own kind that it continues (a store's extraction, a run's training);
- replaces a folder whole (``export --overwrite``) only when it is empty or a previous folder of
  its own kind holding none of the others;
- refuses anything else in one line naming the folder, before it writes anything.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UsageError
from .runfiles import is_real_dir

RUN, CHECKPOINT, STORE, EXPORT = "run", "checkpoint", "feature store", "export"
INSIDE_LIMIT = 10_000  # entries looked at below a folder that is to be replaced
RUN_FILES = {"metrics.jsonl", "summary.json", ".lock", "optimizer.json", "start"}  # beside config.json
SHARD = re.compile(r"features-\d{6}\.safetensors")  # a store's shard (a feature cache's names are hex)


def kind_of(folder: Path) -> str | None:
    """The kind of vlkd folder ``folder`` is, from the names vlkd writes in it (markers specific
    enough that a project's own ``checkpoints/`` or pytest's ``.lock`` do not count); None for
    any other folder."""
    if not is_real_dir(folder):
        return None
    try:
        names = set(os.listdir(folder))
    except OSError:
        return None
    if "vlkd_export.json" in names:
        return EXPORT
    if "extraction.json" in names or any(SHARD.fullmatch(n) for n in names):
        return STORE
    if "meta.json" in names and names & {"manifest.json", "training.pt", "weights.safetensors"}:
        return CHECKPOINT
    if "config.json" in names and names & RUN_FILES or _has_checkpoints(Path(folder) / "checkpoints"):
        return RUN
    if names == {".lock"}:  # a run killed between taking its lock and writing config.json
        return RUN
    return None


def _has_checkpoints(folder: Path) -> bool:
    if not is_real_dir(folder):
        return False
    try:
        return any(n == "LATEST" or n.startswith(("step-", ".tmp-step-")) for n in os.listdir(folder))
    except OSError:
        return False


def enclosing(path: Path) -> tuple[str, Path] | None:
    """(kind, folder) of the nearest vlkd folder that ``path`` is or lies inside (links in the
    path resolved, so a link into a run counts as inside it)."""
    resolved = Path(path).resolve()
    for folder in (resolved, *resolved.parents):
        kind = kind_of(folder)
        if kind is not None:
            return kind, folder
    return None


def inside(folder: Path) -> tuple[str, Path] | None:
    """(kind, folder) of a vlkd folder found below ``folder`` (links not followed)."""
    seen = 0
    for root, dirs, _files in os.walk(folder):
        for name in sorted(dirs):
            kind = kind_of(Path(root) / name)
            if kind is not None:
                return kind, Path(root) / name
        seen += len(dirs)
        if seen > INSIDE_LIMIT:
            return None
    return None


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _not_a_file(path: Path, flag: str) -> None:
    if path.is_symlink():
        raise UsageError(f"{flag} '{path}' is a symbolic link; name the folder itself")
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"{flag} '{path}' is a file, not a folder")


def check_write_into(path: str | Path, flag: str) -> None:
    """``path`` is a folder a command creates files or folders in: it must not be, nor lie
    inside, a run, a checkpoint, a feature store or an export."""
    path = Path(path)
    _not_a_file(path, flag)
    found = enclosing(path)
    if found is None:
        return
    kind, folder = found
    if folder == path.resolve():
        raise UsageError(f"{flag} '{path}' is {_a(kind)}; vlkd never writes into it: choose another folder")
    raise UsageError(f"{flag} '{path}' lies inside the {kind} '{folder}'; choose a folder outside it")


def claim(path: str | Path, flag: str, own: str, *, overwrite: bool = False, resume: bool = False) -> None:
    """May a command write a folder of kind ``own`` at ``path``? Yes when it is absent or empty;
    when it already is an ``own`` folder, with ``resume`` (continue it) or ``overwrite`` (replace
    it whole: only if it holds no other vlkd folder). Every other case is a one-line UsageError."""
    path = Path(path)
    _not_a_file(path, flag)
    found = enclosing(path.resolve().parent)
    if found is not None:
        raise UsageError(f"{flag} '{path}' lies inside the {found[0]} '{found[1]}'; choose a folder outside it")
    if not path.exists() or not any(path.iterdir()):
        return
    kind = kind_of(path)
    if kind is not None and kind != own:
        raise UsageError(f"{flag} '{path}' is {_a(kind)}; it is never replaced or written into: choose another folder")
    if kind is None:
        _refuse_nested(path, flag)
        replace = f" (--overwrite replaces only a previous {own})" if own == EXPORT else ""
        raise UsageError(f"{flag} '{path}' is not empty and not a vlkd {own}; choose an empty or new "
                         f"folder{replace}")
    if resume:
        return
    if not overwrite:
        raise UsageError(f"{flag} '{path}' holds a previous {own}; pass --overwrite to replace it")
    _refuse_nested(path, flag)


def _refuse_nested(path: Path, flag: str) -> None:
    nested = inside(path)
    if nested is not None:
        raise UsageError(f"{flag} '{path}' holds the {nested[0]} '{nested[1]}'; it is never replaced: "
                         "choose another folder")
