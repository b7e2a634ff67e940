"""Fashion-MNIST from the standard IDX files (gzip or raw), e.g. as installed by Debian's
``dataset-fashion-mnist`` package under ``/usr/share/datasets/fashion-mnist``.

Files looked for in ``root``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).
Samples: ``{"image": PIL RGB 28x28, "text": caption from the prompt templates, "label": int}``.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError, UsageError
from .captions import class_caption

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
PREFIX = {"train": "train", "test": "t10k"}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (http://yann.lecun.com/exdb/mnist/ format) as a numpy array; gzip is
    detected from the magic bytes, not the file name."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {data.size} values")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise UsageError(f"fashion-mnist: {stem}[.gz] not found in root={root} (install Debian's "
                     f"dataset-fashion-mnist or point the root option at the IDX files)")


class FashionMNISTDataset(torch.utils.data.Dataset):
    """Options: ``root``, ``split`` (train | test), ``length`` (first n samples), ``seed`` and
    ``caption`` (``random`` | ``first`` template) for captions, ``templates`` (a shipped prompt
    set name or a list)."""

    def __init__(self, split: str = "train", root: str = DEFAULT_ROOT, length: int | None = None,
                 seed: int = 0, caption: str = "random", templates: str | list[str] = "fashion-mnist"):
        if split not in PREFIX:
            raise UsageError(f"fashion-mnist: split must be 'train' or 'test', not '{split}'")
        if caption not in ("random", "first"):
            raise UsageError(f"fashion-mnist: caption must be 'random' or 'first', not '{caption}'")
        from ..evaluation.prompts import load_classnames, resolve_list
        base = Path(root)
        if not base.is_dir():
            raise UsageError(f"fashion-mnist: root directory {base} does not exist")
        self.images = read_idx(_find(base, f"{PREFIX[split]}-images-idx3-ubyte"))
        self.labels = read_idx(_find(base, f"{PREFIX[split]}-labels-idx1-ubyte"))
        if self.images.ndim != 3 or len(self.images) != len(self.labels):
            raise DataError(f"fashion-mnist: {len(self.images)} images but {len(self.labels)} labels in {base}")
        self.split, self.seed, self.caption = split, seed, caption
        self.length = len(self.labels) if length is None else min(length, len(self.labels))
        self.classnames = load_classnames("fashion-mnist")
        self.templates = resolve_list(templates, "templates")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        label = int(self.labels[index])
        image = Image.fromarray(np.ascontiguousarray(self.images[index])).convert("RGB")  # grayscale: no transparency
        text = class_caption(self.templates, self.classnames[label], index, self.seed, self.caption)
        return {"image": image, "text": text, "label": label}
