"""Tiny datasets in the ELEVATER / vision-datasets layout, for tests and tutorials.

``write_dataset(root / "mnist", labelmap, {"train.txt": ("train.zip", [[0], [1], ...])})``
writes ``labels.txt``, the index files and the zips; every image is a noisy square whose colour
is set by its first label, so a model can learn the classes in a few steps.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .layout import write_labelmap, write_split

PALETTE = np.random.default_rng(0).integers(0, 256, (256, 3))


def colour_image(label: int, seed: int, size: int = 16):
    from PIL import Image
    noise = np.random.default_rng(seed).integers(-12, 12, (size, size, 3))
    return Image.fromarray(np.clip(PALETTE[label % len(PALETTE)][None, None, :] + noise, 0, 255).astype(np.uint8))


def write_dataset(folder: str | Path, labelmap: Sequence[str],
                  splits: dict[str, tuple[str, Sequence[Sequence[int]]]], size: int = 16) -> Path:
    """``splits``: ``{index file: (zip name, [label ids per image])}``. Several index files may
    share one zip."""
    folder = Path(folder)
    write_labelmap(folder, labelmap)
    for index, (zip_name, labels) in splits.items():
        stem = Path(index).stem
        write_split(folder, index, zip_name,
                    ((colour_image(labs[0], zlib.crc32(f"{stem}/{i}".encode()), size), labs)
                     for i, labs in enumerate(labels)))
    return folder
