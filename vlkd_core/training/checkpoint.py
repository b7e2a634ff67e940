"""Atomic, verified checkpoints: weights in safetensors, training state loaded with weights_only=True.

Layout of ``RUN/checkpoints/step-000120/``: ``weights.safetensors`` (model, prototype heads and
loss state such as queues/centers/temperatures), ``training.pt`` (optimizer, scheduler, scaler,
RNG states, data position), ``meta.json`` (resolved config, versions, step), and
``manifest.json`` (size and SHA-256 of each of those files), written last. Everything is written
to a temporary folder, fsynced and renamed into place; ``LATEST`` names the newest one.

Readers (``--resume``, ``vlkd eval RUN``) verify a checkpoint against its manifest and fall back
past a corrupt or incomplete one to the newest valid one, with a one-line warning naming what was
skipped; they hold a read lease (see :mod:`.lease`) so pruning never deletes what they read.
Pruning keeps the ``keep`` newest *valid* checkpoints, so the last valid one is never deleted.

A run folder is data (:mod:`vlkd_core.runfiles`): ``LATEST`` holds a checkpoint name
(``step-NNNNNNN``) of a folder directly under ``checkpoints/``, manifest entries are plain file
names of their folder, and links are never followed, so nothing outside the run is read.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import runfiles
from ..durable import fsync, sha256_of
from ..errors import UsageError
from ..storage import write_errors
from . import lease

LATEST = "LATEST"
MANIFEST = "manifest.json"
FILES = ("weights.safetensors", "training.pt", "meta.json")
SHARDED_FILES = ("shards.json", "training.pt", "meta.json")  # --fsdp: weights per rank (see fsdp.py)
STEP = re.compile(r"step-\d{7,12}")  # a checkpoint folder's name; LATEST holds one
LEFTOVERS = (".tmp-*", ".trash-*", f".{LATEST}.tmp*")  # of interrupted saves and prunes


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


def plugin_versions() -> dict[str, str]:
    from ..plugins import get_plugin_manager
    return {info.distribution: info.version for info in get_plugin_manager().plugins.values()}


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fresh_tmp(run_dir: Path, step: int, owner: int) -> tuple[Path, Path, Path]:
    """(checkpoints root, the final folder, an empty temporary folder named after ``owner``)."""
    root = Path(run_dir) / "checkpoints"
    if root.is_symlink():
        raise UsageError(f"'{root}' is a symbolic link; vlkd writes checkpoints only inside the run folder")
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-{final.name}-{owner}"
    with write_errors(f"checkpoint '{final}'", root):
        root.mkdir(parents=True, exist_ok=True)
        _delete(tmp)
        tmp.mkdir()
    return root, final, tmp


def _seal(root: Path, final: Path, tmp: Path, step: int, meta: dict[str, Any], keep: int) -> Path:
    """Write meta.json and the manifest of every file in ``tmp``, fsync, rename into place,
    point LATEST at it and prune."""
    (tmp / "meta.json").write_text(json.dumps(dict(meta, step=step, versions=plugin_versions()),
                                              indent=2, default=str))
    files = {}
    for path in sorted(p for p in tmp.iterdir() if p.is_file()):
        fsync(path)
        files[path.name] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    (tmp / lease.LEASE).touch()
    _write_text(tmp / MANIFEST, json.dumps({"format": 1, "step": step, "files": files}, indent=2))
    fsync(tmp)
    if final.exists():  # re-saving the same step (e.g. resuming past a corrupt checkpoint)
        if not _remove(final, root):  # a reader holds the existing one: it is kept instead
            shutil.rmtree(tmp, ignore_errors=True)
            return final
    os.replace(tmp, final)
    fsync(root)
    runfiles.write_atomic(root / LATEST, final.name)  # a fresh file: never through a planted link
    prune(root, keep, final)
    return final


def save_checkpoint(run_dir: Path, step: int, state: nn.Module, training: dict[str, Any],
                    meta: dict[str, Any], keep: int = 2) -> Path:
    """Write atomically; prune all but the ``keep`` newest valid ones. Returns the folder."""
    from safetensors.torch import save_model
    root, final, tmp = _fresh_tmp(run_dir, step, os.getpid())
    with _writing(final, tmp):
        save_model(state, str(tmp / "weights.safetensors"))
        save_torch(training, tmp / "training.pt")
        return _seal(root, final, tmp, step, meta, keep)


def save_torch(obj: Any, path: Path) -> None:
    """torch.save through a Python file, so a full disk is an OSError naming it (torch's own
    writer only says "unexpected pos")."""
    with open(path, "wb") as fh:
        torch.save(obj, fh)


@contextlib.contextmanager
def _writing(final: Path, tmp: Path) -> Iterator[None]:
    """A failed save removes its temporary folder at once (it would hold the disk full) and
    says why in one line: disk full, read-only."""
    try:
        with write_errors(f"checkpoint '{final}'", tmp):
            yield
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_sharded_checkpoint(run_dir: Path, step: int, bundle: nn.Module, optimizer, training: dict[str, Any],
                            meta: dict[str, Any], keep: int, rank: int, world: int) -> Path | None:
    """Every rank writes its slices (see :mod:`.fsdp`) into one temporary folder; rank 0 adds
    the shared training state and seals it. Collective: call on every rank. Returns the folder
    on rank 0."""
    import torch.distributed as dist

    from . import fsdp
    owner = [os.getpid()]
    dist.broadcast_object_list(owner, src=0)  # one temporary folder name for every rank
    tmp = Path(run_dir) / "checkpoints" / f".tmp-step-{step:07d}-{owner[0]}"
    if rank == 0:
        root, final, tmp = _fresh_tmp(run_dir, step, owner[0])
    dist.barrier()
    sharded = fsdp.write_rank_files(tmp, bundle, optimizer, rank)
    dist.barrier()
    if rank != 0:
        dist.barrier()
        return None
    fsdp.write_shards_info(tmp, world, sharded)
    with _writing(final, tmp):
        save_torch(training, tmp / "training.pt")
        sealed = _seal(root, final, tmp, step, meta, keep)
    dist.barrier()
    return sealed


def _remove(folder: Path, root: Path) -> bool:
    """Delete ``folder`` unless a reader holds its lease: rename it away under an exclusive lock
    (so no new reader can lease it), then delete. False when a reader holds it."""
    fd = lease.try_exclusive(folder)
    if fd is None:
        return False
    try:
        trash = root / f".trash-{folder.name}-{os.getpid()}"
        os.replace(folder, trash)
    finally:
        if fd >= 0:
            os.close(fd)
    _delete(trash)
    return True


def _delete(path: Path) -> None:
    """Remove a folder of ours; a link is removed itself, never what it points to."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def step_folders(root: Path) -> list[Path]:
    """The checkpoint folders directly under ``root``, newest first: real folders named
    ``step-NNNNNNN`` (a link or any other name is not one)."""
    if not runfiles.is_real_dir(root):
        return []
    found = [p for p in root.iterdir() if STEP.fullmatch(p.name) and runfiles.is_real_dir(p)]
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def remove_leftovers(root: Path, keep_mine: bool = False) -> None:
    """Delete what interrupted saves and prunes left in ``root`` (temporary and trash folders,
    a temporary LATEST): they would otherwise hold the disk full. ``keep_mine`` spares this
    process's own (the run lock excludes every other writer)."""
    mine = f"-{os.getpid()}"
    for pattern in LEFTOVERS:
        for junk in root.glob(pattern):
            if not (keep_mine and junk.name.endswith(mine)):
                _delete(junk)


def prune(root: Path, keep: int, newest: Path | None = None) -> None:
    """Keep the ``keep`` newest valid checkpoints (and ``newest``); delete the rest (invalid ones
    included) except those a reader holds, which go at a later save. Leftovers of interrupted
    saves are removed too."""
    folders = step_folders(root)
    valid = [p for p in folders if verify(p, full=False) is None]
    keepers = set(valid[:max(keep, 1)]) | ({newest} if newest else set())
    for folder in folders:
        if folder not in keepers:
            _remove(folder, root)
    remove_leftovers(root, keep_mine=True)


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
