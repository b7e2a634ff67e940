"""A cache of a locked tower's features, so a frozen teacher runs once per distinct input.

Keys are strings (a caption, or a dataset sample id for images seen with eval transforms).
The disk form is one safetensors file per model fingerprint (spec, weights and preprocessing),
so a changed model never reads stale features.

A feature is computed from its input alone (a batch of one), so it is a pure function of the
model and the key: batch composition changes a tower's numerics slightly (padding length,
kernel choice), and a feature first computed among other inputs would differ in its last bits
from the same feature computed after a resume, in another run, or from a disk cache. Only
misses pay for this, once per distinct input.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn


def model_fingerprint(spec: str, module: nn.Module, extra: str = "") -> str:
    """A short hash of the tower's spec and weights."""
    h = hashlib.sha1(f"{spec}|{extra}".encode())
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1)[:4096].float().numpy().tobytes())
        h.update(str(tuple(tensor.shape)).encode())
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
        return list(batch.texts if side == "text" else batch.keys)

    def features(self, keys: Sequence[str], compute: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Features for ``keys``; ``compute(positions)`` runs the tower on the missing ones only."""
        hashed = [_key_hash(k) for k in keys]
        missing = [i for i, h in enumerate(hashed) if h not in self.store]
        first = {}
        for i in missing:  # a key repeated within the batch is computed once
            first.setdefault(hashed[i], i)
        todo = list(first.values())
        if todo:
            with torch.no_grad():
                for pos in todo:
                    self.store[hashed[pos]] = compute([pos]).detach().float().cpu()[0].clone()
            self._dirty = True
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return torch.stack([self.store[h] for h in hashed])

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
