"""A cache of a locked tower's features, so a frozen teacher runs once per distinct input.

Keys are strings (a caption, or a dataset sample id for images seen with eval transforms).
The disk form is one safetensors file per model fingerprint (spec, weights and preprocessing),
so a changed model never reads stale features.

A batch's misses are computed together, in one forward pass (a frozen MiniLM teacher computed
caption by caption spent most of the default job's first epoch on it). Batch composition changes
a tower's numerics in the last bits (padding length, kernel choice), so a feature depends on the
misses it was computed with: for an exact resume the cache's contents travel in the checkpoint
(:meth:`FeatureCache.state_dict`), so a resumed run misses the same keys in the same batches and
computes the same bits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..datasets.keys import input_keys
from .._runfiles.weights import hash_state


def model_fingerprint(spec: str, module: nn.Module, extra: str = "") -> str:
    """A short hash of the tower's spec and every value of every tensor of its state (a tower
    that differs anywhere gets another disk cache; blake2b reads ~1 GB/s, so MiniLM's 90 MB cost
    ~0.1 s once per run)."""
    h = hashlib.blake2b(f"{spec}|{extra}".encode(), digest_size=16)
    hash_state(module, h)
    return h.hexdigest()[:16]


def _key_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class FeatureCache:
    def __init__(self, fingerprint: str, disk_dir: str | Path | None = None):
        self.fingerprint = fingerprint
        self.store: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0
        self.path = Path(disk_dir) / f"features-{fingerprint}.safetensors" if disk_dir else None
        self._dirty = False
        if self.path and self.path.exists():
            from safetensors.torch import load_file
            self.store = dict(load_file(str(self.path)))

    def __len__(self) -> int:
        return len(self.store)

    def keys_for(self, side: str, batch) -> list[str]:
        """A batch's cache keys: captions on the text side, sample keys on the image side."""
        return input_keys(side, batch.keys, batch.texts)

    def features(self, keys: Sequence[str], compute: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Features for ``keys``; ``compute(positions)`` runs the tower on the missing ones only."""
        hashed = [_key_hash(k) for k in keys]
        missing = [i for i, h in enumerate(hashed) if h not in self.store]
        first = {}
        for i in missing:  # a key repeated within the batch is computed once
            first.setdefault(hashed[i], i)
        todo = list(first.values())
        if todo:
            with torch.inference_mode():
                computed = compute(todo).detach().float().cpu()
            for pos, row in zip(todo, computed):
                self.store[hashed[pos]] = row
            self._dirty = True
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return torch.stack([self.store[h] for h in hashed])

    def state_dict(self) -> dict[str, Any]:
        """The cached features, for a checkpoint: key hashes and one [N, D] tensor."""
        keys = list(self.store)
        return {"keys": keys, "features": torch.stack([self.store[k] for k in keys]) if keys else torch.empty(0)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the contents with a checkpoint's (see the module docstring)."""
        self.store = dict(zip(state["keys"], state["features"].unbind(0)))

    def save(self) -> None:
        """Write the disk cache atomically (no-op for a memory cache or when nothing changed)."""
        if not self.path or not self._dirty:
            return
        from safetensors.torch import save_file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        save_file(self.store, str(tmp))
        tmp.replace(self.path)
        self._dirty = False
