"""Atomic, verified checkpoints: weights in safetensors, training state loaded with weights_only=True.

Layout of ``RUN/checkpoints/step-000120/``: ``weights.safetensors`` (model, prototype heads and
loss state such as queues/centers/temperatures), ``training.pt`` (optimizer, scheduler, scaler,
RNG states, data position), ``meta.json`` (resolved config, versions, step), and
``manifest.json`` (size and SHA-256 of each of those files), written last. Everything is written
to a temporary folder, fsynced and renamed into place; ``LATEST`` names the newest one.

Pruning keeps the ``keep`` newest *valid* checkpoints, so the last valid one is never deleted. A
failed save removes its temporary folder at once and says why in one line (disk full,
read-only); the leftovers of a killed one are removed when the run next starts.

Finding and reading them (verify, ``LATEST``, fallback, loading): :mod:`.checkpoint_read`, whose
names are re-exported here.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runfiles import runfiles
from .._runfiles.durable import fsync, sha256_of
from ..errors import UsageError
from .._runfiles.storage import write_errors
from . import lease
from .checkpoint_read import (FILES, LATEST, MANIFEST, SHARDED_FILES, STEP, find_checkpoint,  # noqa: F401
                              load_training_state, load_weights, position, read_meta, release,
                              step_folders, verify)

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
    from .._host.plugins import get_plugin_manager
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
