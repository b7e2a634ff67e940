"""Tiny datasets in the ELEVATER / vision-datasets layout, for tests and tutorials.

``write_dataset(root / "mnist", labelmap, {"train.txt": ("train.zip", [[0], [1], ...])})``
writes ``labels.txt``, the index files and the zips; every image is a noisy square whose colour
is set by its first label, so a model can learn the classes in a few steps.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

PALETTE = np.random.default_rng(0).integers(0, 256, (256, 3))


def colour_png(label: int, seed: int, size: int = 16) -> bytes:
    from PIL import Image
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 12, (size, size, 3))
    arr = np.clip(PALETTE[label % len(PALETTE)][None, None, :] + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_dataset(folder: str | Path, labelmap: Sequence[str],
                  splits: dict[str, tuple[str, Sequence[Sequence[int]]]], size: int = 16) -> Path:
    """``splits``: ``{index file: (zip name, [label ids per image])}``; lines are written as
    ``<zip>@<member> <label>[,<label>...]``. Several index files may share one zip."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    (folder / "labels.txt").write_text("\n".join(labelmap) + "\n", encoding="utf-8")
    for index, (zip_name, labels) in splits.items():
        lines = []
        with zipfile.ZipFile(folder / zip_name, "a") as zf:
            for i, labs in enumerate(labels):
                member = f"{Path(index).stem}/{i}.png"
                zf.writestr(member, colour_png(labs[0], zlib.crc32(member.encode()), size))
                lines.append(f"{zip_name}@{member} {','.join(map(str, labs))}")
        (folder / index).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
