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
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..durable import fsync, sha256_of
from ..errors import UsageError
from . import lease

LATEST = "LATEST"
MANIFEST = "manifest.json"
FILES = ("weights.safetensors", "training.pt", "meta.json")
SHARDED_FILES = ("shards.json", "training.pt", "meta.json")  # --fsdp: weights per rank (see fsdp.py)


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
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-{final.name}-{owner}"
    shutil.rmtree(tmp, ignore_errors=True)
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
    pointer = root / f".{LATEST}.tmp"
    _write_text(pointer, final.name)
    os.replace(pointer, root / LATEST)
    fsync(root)
    prune(root, keep, final)
    return final


def save_checkpoint(run_dir: Path, step: int, state: nn.Module, training: dict[str, Any],
                    meta: dict[str, Any], keep: int = 2) -> Path:
    """Write atomically; prune all but the ``keep`` newest valid ones. Returns the folder."""
    from safetensors.torch import save_model
    root, final, tmp = _fresh_tmp(run_dir, step, os.getpid())
    save_model(state, str(tmp / "weights.safetensors"))
    torch.save(training, tmp / "training.pt")
    return _seal(root, final, tmp, step, meta, keep)


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
    torch.save(training, tmp / "training.pt")
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
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(root: Path, keep: int, newest: Path | None = None) -> None:
    """Keep the ``keep`` newest valid checkpoints (and ``newest``); delete the rest (invalid ones
    included) except those a reader holds, which go at a later save. Leftovers of interrupted
    saves are removed too."""
    folders = sorted((p for p in root.glob("step-*") if p.is_dir()), reverse=True)
    valid = [p for p in folders if verify(p, full=False) is None]
    keepers = set(valid[:max(keep, 1)]) | ({newest} if newest else set())
    for folder in folders:
        if folder not in keepers:
            _remove(folder, root)
    mine = f"-{os.getpid()}"
    for junk in list(root.glob(".tmp-*")) + list(root.glob(".trash-*")):
        if not junk.name.endswith(mine):  # left by a killed save (the run lock excludes others)
            shutil.rmtree(junk, ignore_errors=True)


def verify(folder: Path, full: bool = True) -> str | None:
    """None when ``folder`` is a complete checkpoint, else why not (one short phrase). ``full``
    also compares checksums (sizes only otherwise). Folders from before manifests were written
    count as complete when their files exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return "it does not exist"
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        missing = [name for name in FILES if not (folder / name).exists()]
        return f"incomplete (no {MANIFEST}, {missing[0]} missing)" if missing else None
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        assert all(name in files for name in (SHARDED_FILES if "shards.json" in files else FILES))
    except Exception:
        return f"{MANIFEST} is unreadable"
    for name, info in files.items():
        path = folder / name
        if not path.exists():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != info["size"]:
            return f"{name} has {size} bytes, expected {info['size']}"
        if full and sha256_of(path) != info["sha256"]:
            return f"{name} fails its SHA-256 check"
    return None


def _candidates(path: Path) -> tuple[list[Path], list[str]]:
    """Checkpoint folders of a run, LATEST's first, then newest first; plus notes on LATEST."""
    root = path / "checkpoints"
    notes: list[str] = []
    ordered: list[Path] = []
    pointer = root / LATEST
    if pointer.exists():
        named = root / pointer.read_text().strip()
        if named.is_dir() and named.name.startswith("step-"):
            ordered.append(named)
        else:
            notes.append(f"LATEST names '{named.name}', which does not exist")
    if root.is_dir():
        ordered += [p for p in sorted(root.glob("step-*"), reverse=True) if p.is_dir() and p not in ordered]
    return ordered, notes


def find_checkpoint(resume: str, run_dir: Path | None = None) -> Path:
    """``latest`` (in ``run_dir``), a run directory, or a checkpoint folder: the newest valid
    checkpoint, verified against its manifest. Skipped ones are named in a one-line warning on
    stderr. The caller holds a read lease on the returned folder until :func:`release`s it (or
    exits), so a training process pruning that run cannot delete it meanwhile."""
    if resume == "latest" and run_dir is None:
        raise UsageError("--resume latest needs --name (or --output-dir/--name) of the run to resume")
    path = Path(run_dir) if resume == "latest" else Path(resume)
    if (path / "weights.safetensors").exists() or (path / MANIFEST).exists():  # a checkpoint folder
        lease.acquire(path)
        reason = verify(path)
        if reason:
            lease.release(path)
            raise UsageError(f"checkpoint '{path}' is not usable: {reason}")
        return path
    for _attempt in range(3):  # a folder pruned while we looked: look again
        candidates, notes = _candidates(path)
        skipped = list(notes)
        pruned = False
        for folder in candidates:
            if not lease.acquire(folder):
                pruned = True
                continue
            reason = verify(folder)
            if reason is None:
                if skipped:
                    print(f"warning: {'; '.join(skipped)}; using {folder.name}",
                          file=sys.stderr, flush=True)
                return folder
            lease.release(folder)
            skipped.append(f"skipped {folder.name} ({reason})")
        if not pruned:
            break
    if skipped:
        raise UsageError(f"no valid checkpoint in '{path}': {'; '.join(skipped)}")
    raise UsageError(f"no checkpoint found in '{path}' (expected a run directory or a checkpoint folder)")


def release(folder: Path | None = None) -> None:
    """Drop the read lease :func:`find_checkpoint` took on ``folder`` (all when None)."""
    lease.release(folder)


def load_weights(folder: Path, state: nn.Module) -> None:
    """Load a checkpoint's weights into a plain (unsharded) module; a sharded checkpoint's slices
    are put back together first."""
    from safetensors.torch import load_model
    if (Path(folder) / "shards.json").exists():
        from .fsdp import full_weights
        missing, unexpected = state.load_state_dict(full_weights(folder), strict=False)
    else:
        missing, unexpected = load_model(state, str(folder / "weights.safetensors"), strict=False)
    if missing or unexpected:
        raise UsageError(f"checkpoint '{folder}' does not match the model built from its config "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def load_training_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / "training.pt", map_location="cpu", weights_only=True)


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "meta.json").read_text())
