"""Reading a feature store for training (`vlkd train --teacher-features DIR`).

A store is data received from someone else as much as a run folder is: only its JSON and the
safetensors shards are read (memory-mapped, so a rank touches only the pages of its keys), shard
names must be plain ``features-NNNNNN.safetensors`` files inside DIR, and every shard is checked
against the manifest's size and sha256 before training starts. Every problem is one line naming
the store and, where there is one, the key.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..datasets.keys import input_keys
from ..errors import UsageError
from ..training.config import TowerConfig
from . import layout
from .reinforce import CROP


class FeatureStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest = layout.read_json(self.folder / layout.MANIFEST)
        if manifest is None:
            hint = (" (an extraction still running or killed: run the same `vlkd features extract` "
                    "again to finish it)") if (self.folder / layout.SETTINGS).exists() else ""
            raise self.error(f"no readable {layout.MANIFEST}{hint}")
        if manifest.get("format") != layout.FORMAT or manifest.get("version") != layout.VERSION:
            raise self.error(f"not a {layout.FORMAT} v{layout.VERSION} store")
        problem = layout.manifest_problem(manifest)
        if problem:
            raise self.error(f"{layout.MANIFEST}: {problem}")
        self.manifest = manifest
        self.side, self.width, self.dtype = manifest["side"], int(manifest["width"]), manifest["dtype"]
        self.model = manifest["model"]
        self._index: dict[str, int] | None = None
        self._files: list[Path] = []
        self._open: dict[int, Any] = {}

    def error(self, message: str) -> UsageError:
        return UsageError(f"teacher feature store '{self.folder}': {message}")

    def __len__(self) -> int:
        return int(self.manifest.get("count", 0))

    # -- checks before training ------------------------------------------------------------------
    def verify(self) -> None:
        """Every shard: a plain name in the folder, size and sha256 as listed, and every entry a
        ``[width]`` vector of the store's dtype. Builds the key index."""
        want = layout.DTYPES.get(self.dtype)
        if want is None:
            raise self.error(f"unknown dtype '{self.dtype}' in {layout.MANIFEST}")
        index: dict[str, int] = {}
        for n, shard in enumerate(self.manifest["shards"]):
            name = shard["file"]
            path = self.folder / name
            if not layout.SHARD_NAME.fullmatch(name) or not layout.is_regular(path):
                raise self.error(f"shard '{name}' is missing or not a feature shard name")
            if path.stat().st_size != shard["bytes"] or layout.sha256_of(path) != shard["sha256"]:
                raise self.error(f"shard '{name}' does not match its sha256 in {layout.MANIFEST}")
            header = self._header(path)
            if len(header) != shard["entries"]:
                raise self.error(f"shard '{name}' holds {len(header)} entries, but {layout.MANIFEST} says {shard['entries']}")
            for key, info in header.items():
                crop = self.side == "model" and key.endswith(CROP)  # a reinforced store's crop record
                dtype, shape = ("I32", [7]) if crop else (want, [self.width])
                if info.get("dtype") != dtype:
                    raise self.error(f"key '{key}' is {info.get('dtype')}, but the store says {self.dtype} ({dtype})")
                if info.get("shape") != shape:
                    raise self.error(f"key '{key}' has shape {info.get('shape')}, but the store's width is {self.width}"
                                     if not crop else f"crop record '{key}' has shape {info.get('shape')}, not [7]")
                index.setdefault(key, n)
            self._files.append(path)
        self._index = index

    def _header(self, path: Path) -> dict[str, Any]:
        try:
            header = layout.read_header(path)
        except (OSError, ValueError, struct.error):
            raise self.error(f"shard '{path.name}' is not a readable safetensors file") from None
        if not all(isinstance(info, dict) for info in header.values()):
            raise self.error(f"shard '{path.name}' is not a readable safetensors file")
        return header

    def check_model(self, tower: TowerConfig) -> None:
        """The store must hold the features of the teacher tower the run names."""
        flag = f"--{tower.side}"
        if self.side != tower.side:
            raise self.error(f"holds {self.side} features, but the teacher is the {tower.side} tower")
        if self.model.get("spec") != tower.spec:
            raise self.error(f"holds features of '{self.model.get('spec')}', but {flag} is '{tower.spec}'")
        if self.model.get("pretrained") != tower.pretrained:
            raise self.error(f"holds features of {flag}-pretrained {self.model.get('pretrained')!r}, "
                             f"not {tower.pretrained!r}")
        if (self.model.get("options") or {}) != (tower.options or {}):
            raise self.error(f"holds features of {flag}-option {self.model.get('options')}, not {tower.options}")

    def missing(self, entries: Sequence[str]) -> str | None:
        """The first entry the store does not hold."""
        assert self._index is not None, "verify() first"
        return next((e for e in entries if e not in self._index), None)

    # -- lookups ---------------------------------------------------------------------------------
    def entries(self) -> list[str]:
        """Every entry of the store (after :meth:`verify`)."""
        if self._index is None:
            self.verify()
        return list(self._index)

    def get_raw(self, entry: str) -> torch.Tensor:
        """One entry as stored (its own dtype and shape)."""
        from safetensors import safe_open
        if self._index is None:
            self.verify()
        n = self._index.get(entry)
        if n is None:
            raise self.error(f"no feature for key '{entry}'")
        if n not in self._open:
            self._open[n] = safe_open(str(self._files[n]), framework="pt")
        return self._open[n].get_tensor(entry)

    def get(self, entries: Sequence[str]) -> torch.Tensor:
        """``[len(entries), width]`` float32 features."""
        return torch.stack([self.get_raw(entry).float() for entry in entries])


class StoredFeatures:
    """The teacher side's feature source in a run with ``--teacher-features``: the interface of
    :class:`~vlkd_core.training.cache.FeatureCache`, answered from the store (``compute`` is
    never called: there is no tower to call)."""

    def __init__(self, store: FeatureStore, side: str):
        self.store, self.side = store, side
        self.path = store.folder  # on disk already: nothing to carry in a checkpoint
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self.store)

    def keys_for(self, side: str, batch: Any) -> list[str]:
        return input_keys(side, batch.keys, batch.texts, entries=True)

    def features(self, keys: Sequence[str], compute: Callable | None = None) -> torch.Tensor:
        self.hits += len(keys)
        return self.store.get(keys)

    def save(self) -> None:
        """Nothing to save: the store is read-only."""
