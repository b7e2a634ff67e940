"""Encoding one unit (input shard) with a locked tower through :mod:`vlkd_core._model.encoding`: eval mode,
no grad, no augmentation, batches that start at the unit's beginning."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .._model import encoding
from ..datasets.captions import captions_of
from ..datasets.keys import caption_entry
from .._runfiles.weights import hash_state
from .sources import Unit

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def weights_sha256(module: nn.Module) -> str:
    """SHA-256 of every tensor of the state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    hash_state(module, h)
    return h.hexdigest()


def preprocessing(tower: nn.Module, side: str) -> dict[str, Any]:
    """What the inputs went through, for the manifest (and the image spec a stored image tower
    needs to build the data loader's transform without loading the tower)."""
    kind = type(tower)
    info: dict[str, Any] = {"transform": f"{kind.__module__}.{kind.__qualname__}.preprocess(train=False)"}
    spec = getattr(tower, "image_spec", None) if side == "image" else None
    if spec is not None:
        info["image_spec"] = {"size": spec.size, "mean": list(spec.mean), "std": list(spec.std),
                              "interpolation": getattr(spec.interpolation, "value", str(spec.interpolation))}
    return info


class Encoder:
    def __init__(self, tower: nn.Module, side: str, batch_size: int, dtype: str, device: torch.device):
        self.tower, self.side, self.batch_size = tower, side, batch_size
        self.dtype, self.device = TORCH_DTYPES[dtype], device
        self.transform = encoding.image_transform(tower) if side == "image" else None

    def _inputs(self, unit: Unit) -> Iterator[tuple[str, Any, int]]:
        """(entry, input, samples done) in unit order; an entry seen before is not repeated."""
        seen: set[str] = set()
        self.samples = 0
        for n, (key, item) in enumerate(unit.items(), 1):
            self.samples = n
            if self.side == "image":
                pairs = [(key, item["image"])]
            else:
                pairs = [(caption_entry(key, c), c) for c in captions_of(item)]
            for entry, value in pairs:
                if entry not in seen:
                    seen.add(entry)
                    yield entry, value, n

    def _run(self, values: list) -> torch.Tensor:
        """One batch through the tower (:mod:`vlkd_core._model.encoding`, no head), in the store's dtype."""
        inputs = encoding.image_batch(values, self.transform) if self.side == "image" else \
            encoding.tokens(self.tower, values)
        return encoding.features(self.tower, None, inputs, self.device).to("cpu", self.dtype)

    def encode(self, unit: Unit, advance: Callable[[int], None]) -> tuple[dict[str, torch.Tensor], int]:
        """Every entry of ``unit`` -> its vector; and how many samples the unit held."""
        out: dict[str, torch.Tensor] = {}
        entries: list[str] = []
        values: list = []
        done = 0

        def flush() -> None:
            feats = self._run(values)
            for i, entry in enumerate(entries):
                out[entry] = feats[i].clone()  # own storage: safetensors refuses shared tensors
            entries.clear()
            values.clear()

        for entry, value, n in self._inputs(unit):
            entries.append(entry)
            values.append(value)
            if n > done:
                advance(n - done)
                done = n
            if len(values) == self.batch_size:
                flush()
        if values:
            flush()
        advance(self.samples - done)
        return out, self.samples
