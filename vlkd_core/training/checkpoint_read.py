"""Finding and reading checkpoints, as data received from someone else.

Readers (``--resume``, ``vlkd eval RUN``, ``vlkd.load``) verify a checkpoint against its manifest
and fall back past a corrupt or incomplete one to the newest valid one, with a one-line warning
naming what was skipped; they hold a read lease (see :mod:`.lease`) so pruning never deletes
what they read.

A run folder is data (:mod:`vlkd_core._runfiles.runfiles`): ``LATEST`` holds a checkpoint name
(``step-NNNNNNN``) of a folder directly under ``checkpoints/``, manifest entries are plain file
names of their folder, and links are never followed, so nothing outside the run is read. A file
its manifest vouches for but that does not parse is a one-line error naming it.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._runfiles import runfiles
from .._runfiles.durable import sha256_of
from ..errors import UsageError
from . import lease

LATEST = "LATEST"
MANIFEST = "manifest.json"
FILES = ("weights.safetensors", "training.pt", "meta.json")
SHARDED_FILES = ("shards.json", "training.pt", "meta.json")  # --fsdp: weights per rank (see fsdp.py)
STEP = re.compile(r"step-\d{7,12}")  # a checkpoint folder's name; LATEST holds one


def step_folders(root: Path) -> list[Path]:
    """The checkpoint folders directly under ``root``, newest first: real folders named
    ``step-NNNNNNN`` (a link or any other name is not one)."""
    if not runfiles.is_real_dir(root):
        return []
    found = [p for p in root.iterdir() if STEP.fullmatch(p.name) and runfiles.is_real_dir(p)]
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def _manifest_files(folder: Path) -> dict[str, dict] | str:
    """The manifest's ``files`` (plain names -> size and sha256), or why it is unusable."""
    try:
        files = runfiles.read_json(folder / MANIFEST).get("files")
    except UsageError:
        return f"{MANIFEST} is unreadable"
    if not isinstance(files, dict) or not all(
            runfiles.is_entry(name) and isinstance(info, dict) and isinstance(info.get("size"), int)
            and isinstance(info.get("sha256"), str) for name, info in files.items()):
        return f"{MANIFEST} is unreadable"
    if not all(name in files for name in (SHARDED_FILES if "shards.json" in files else FILES)):
        return f"{MANIFEST} is unreadable"
    return files


def verify(folder: Path, full: bool = True) -> str | None:
    """None when ``folder`` is a complete checkpoint, else why not (one short phrase). ``full``
    also compares checksums (sizes only otherwise). Folders from before manifests were written
    count as complete when their files exist. Every file must be a plain file in the folder."""
    folder = Path(folder)
    if not runfiles.is_real_dir(folder):
        return "it is a symbolic link" if folder.is_symlink() else "it does not exist"
    if not os.path.lexists(folder / MANIFEST):
        missing = [name for name in FILES if not runfiles.is_regular(folder / name)]
        return f"incomplete (no {MANIFEST}, {missing[0]} missing)" if missing else _meta_problem(folder)
    files = _manifest_files(folder)
    if isinstance(files, str):
        return files
    for name, info in files.items():
        path = folder / name
        if not runfiles.is_regular(path):
            return f"{name} is a symbolic link" if path.is_symlink() else f"{name} is missing"
        size = path.stat().st_size
        if size != info["size"]:
            return f"{name} has {size} bytes, expected {info['size']}"
        if full and sha256_of(path) != info["sha256"]:
            return f"{name} fails its SHA-256 check"
    return _meta_problem(folder)


def _meta_problem(folder: Path) -> str | None:
    try:
        read_meta(folder)
    except UsageError:
        return "meta.json is unreadable"
    return None


def _latest(root: Path) -> tuple[Path | None, str | None]:
    """The folder ``LATEST`` names, or why it is ignored (a one-line note)."""
    pointer = root / LATEST
    if not os.path.lexists(pointer):
        return None, None
    try:
        name = runfiles.read_text(pointer).strip()
    except UsageError as exc:
        return None, f"{exc}: ignored"
    if not STEP.fullmatch(name):
        return None, (f"'{pointer}' holds {runfiles.shown(name)}, not the name of a checkpoint "
                      "folder of this run (step-NNNNNNN): ignored")
    if not runfiles.is_real_dir(root / name):
        return None, f"LATEST names '{name}', which does not exist"
    return root / name, None


def _candidates(path: Path) -> tuple[list[Path], list[str]]:
    """Checkpoint folders of a run, LATEST's first, then newest first; plus notes on LATEST."""
    root = path / "checkpoints"
    if root.is_symlink():
        raise UsageError(f"'{root}' is a symbolic link; a run's checkpoints must be inside the run folder")
    named, note = _latest(root)
    ordered = [named] if named is not None else []
    ordered += [p for p in step_folders(root) if p not in ordered]
    links = sorted(p.name for p in root.glob("step-*") if p.is_symlink()) if root.is_dir() else []
    return ordered, [note] * bool(note) + [f"skipped {name} (a symbolic link)" for name in links]


def find_checkpoint(resume: str, run_dir: Path | None = None) -> Path:
    """``latest`` (in ``run_dir``), a run directory, or a checkpoint folder: the newest valid
    checkpoint, verified against its manifest. Skipped ones are named in a one-line warning on
    stderr. The caller holds a read lease on the returned folder until :func:`release`s it (or
    exits), so a training process pruning that run cannot delete it meanwhile."""
    if resume == "latest" and run_dir is None:
        raise UsageError("--resume latest needs --name (or --output-dir/--name) of the run to resume")
    path = Path(run_dir) if resume == "latest" else Path(resume)
    if os.path.lexists(path / "weights.safetensors") or os.path.lexists(path / MANIFEST):  # a checkpoint
        lease.acquire(path)
        reason = verify(path)
        if reason:
            lease.release(path)
            raise UsageError(f"checkpoint '{path}' is not usable: {reason}")
        return path
    for _attempt in range(3):  # a folder pruned while we looked: look again
        candidates, skipped = _candidates(path)
        pruned = False
        for folder in candidates:
            if not lease.acquire(folder):
                pruned = True
                continue
            reason = verify(folder)
            if reason is None:
                _warn_once(f"warning: {'; '.join(skipped)}; using {folder.name}" if skipped else "")
                return folder
            lease.release(folder)
            skipped.append(f"skipped {folder.name} ({reason})")
        if not pruned:
            break
    if skipped:
        raise UsageError(f"no valid checkpoint in '{path}': {'; '.join(skipped)}")
    raise UsageError(f"no checkpoint found in '{path}' (expected a run directory or a checkpoint folder)")


_warned: set[str] = set()  # a resume reads the checkpoint twice (config, then state): say it once


def _warn_once(message: str) -> None:
    if message and message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr, flush=True)


def release(folder: Path | None = None) -> None:
    """Drop the read lease :func:`find_checkpoint` took on ``folder`` (all when None: the reading
    is done, so the next one warns again)."""
    lease.release(folder)
    if folder is None:
        _warned.clear()


def _unreadable(path: Path, exc: BaseException) -> UsageError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return UsageError(f"'{path}' is unreadable ({first})")


def load_weights(folder: Path, state: nn.Module) -> None:
    """Load a checkpoint's weights into a plain (unsharded) module; a sharded checkpoint's slices
    are put back together first."""
    from safetensors.torch import load_model
    folder = Path(folder)
    sharded = runfiles.is_regular(folder / "shards.json")
    path = folder / ("shards.json" if sharded else "weights.safetensors")
    _check_file(path)
    try:
        if sharded:
            from .fsdp import full_weights
            missing, unexpected = state.load_state_dict(full_weights(folder), strict=False)
        else:
            missing, unexpected = load_model(state, str(path), strict=False)
    except UsageError:
        raise
    except Exception as exc:  # a damaged file that its manifest vouches for: one line, not a traceback
        raise _unreadable(path, exc) from None
    if missing or unexpected:
        raise UsageError(f"checkpoint '{folder}' does not match the model built from its config "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def _check_file(path: Path) -> None:
    if not runfiles.is_regular(path):
        runfiles.read_bytes(path)  # raises, naming what it is instead


def load_training_state(folder: Path, name: str = "training.pt") -> dict[str, Any]:
    """A checkpoint's training state (weights_only: tensors and plain containers, never code)."""
    path = Path(folder) / name
    _check_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(state, dict):
        raise UsageError(f"'{path}' holds {type(state).__name__}, not a training state")
    return state


def position(folder: Path, state: dict[str, Any]) -> tuple[int, int, int]:
    """(step, epoch, batch in epoch) of a training state, each a whole number >= 0."""
    values = [state.get(key) for key in ("step", "epoch", "batch_in_epoch")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise UsageError(f"'{Path(folder) / 'training.pt'}' holds no training position (step, epoch, batch)")
    return values[0], values[1], values[2]


def read_meta(folder: Path) -> dict[str, Any]:
    """``meta.json``: a JSON object whose ``config``, when present, is a table of options."""
    path = Path(folder) / "meta.json"
    meta = runfiles.read_json(path)
    if not isinstance(meta.get("config", {}), dict):
        raise UsageError(f"'{path}': 'config' is not a table of options")
    return meta
