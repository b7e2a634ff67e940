"""A procedurally generated captioned-shapes dataset: no download, deterministic per seed.

Each sample draws one shape, or two shapes with a spatial relation, e.g.
"a small red circle above a large blue square". ``label`` is the class of the first (or only)
shape's ``label_by`` attribute (shape or colour), so the set serves zero-shot evaluation too.
"""
from __future__ import annotations

import hashlib
import random

import torch
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle", "diamond", "cross"]
COLOURS = {"red": (215, 40, 40), "green": (40, 170, 60), "blue": (45, 75, 220),
           "yellow": (235, 200, 30), "purple": (140, 60, 180), "orange": (240, 130, 30)}
SIZES = {"small": 0.22, "large": 0.40}
RELATIONS = ["above", "below", "left of", "right of"]
TEMPLATES = {
    "shape": ["a {}.", "a picture of a {}.", "a drawing of a {}.", "a coloured {}."],
    "colour": ["a {} shape.", "something {}.", "a drawing of a {} shape."],
}
SPLIT_OFFSET = {"train": 0, "val": 1, "validation": 1, "test": 2}


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif shape == "cross":
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)


class ShapesDataset(torch.utils.data.Dataset):
    """Coloured shapes with captions; ``split`` selects disjoint seeds (train/val/test)."""

    def __init__(self, split: str = "train", length: int | None = None, size: int = 64,
                 seed: int = 0, two_shapes: float = 0.5, label_by: str = "shape"):
        if split not in SPLIT_OFFSET:
            raise ValueError(f"shapes: split must be one of {sorted(SPLIT_OFFSET)}, not '{split}'")
        if label_by not in TEMPLATES:
            raise ValueError(f"shapes: label_by must be 'shape' or 'colour', not '{label_by}'")
        self.split, self.size, self.seed = split, size, seed
        self.length = length if length is not None else (4000 if split == "train" else 500)
        self.two_shapes, self.label_by = two_shapes, label_by
        self.classnames = SHAPES if label_by == "shape" else list(COLOURS)
        self.templates = TEMPLATES[label_by]

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> random.Random:
        key = f"{self.seed}/{SPLIT_OFFSET[self.split]}/{index}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))

    def describe(self, index: int) -> list[dict]:
        """The shapes of sample ``index`` (shape, colour, size) without drawing it."""
        rng = self._rng(index)
        count = 2 if rng.random() < self.two_shapes else 1
        items = [{"shape": rng.choice(SHAPES), "colour": rng.choice(list(COLOURS)),
                  "size": rng.choice(list(SIZES))} for _ in range(count)]
        relation = rng.choice(RELATIONS) if count == 2 else None
        return [dict(it, relation=relation, rng=rng) for it in items]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        items = self.describe(index)
        rng = items[0]["rng"]
        s = self.size
        bg = tuple(235 + rng.randint(-15, 15) for _ in range(3))
        image = Image.new("RGB", (s, s), bg)
        draw = ImageDraw.Draw(image)
        if len(items) == 1:
            centres = [(s / 2 + rng.uniform(-0.1, 0.1) * s, s / 2 + rng.uniform(-0.1, 0.1) * s)]
            scale = 1.0
        else:
            a, b = (0.28 * s, 0.72 * s)
            relation = items[0]["relation"]
            mid = s / 2 + rng.uniform(-0.05, 0.05) * s
            first, second = {"above": ((mid, a), (mid, b)), "below": ((mid, b), (mid, a)),
                             "left of": ((a, mid), (b, mid)), "right of": ((b, mid), (a, mid))}[relation]
            centres, scale = [first, second], 0.6
        for it, (cx, cy) in zip(items, centres):
            r = SIZES[it["size"]] * s * scale * rng.uniform(0.9, 1.1)
            jitter = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[it["colour"]])
            _draw(draw, it["shape"], cx, cy, r, jitter)
        phrases = [f"a {it['size']} {it['colour']} {it['shape']}" for it in items]
        text = phrases[0] if len(items) == 1 else f"{phrases[0]} {items[0]['relation']} {phrases[1]}"
        first = items[0]
        label = self.classnames.index(first[self.label_by])
        return {"image": image, "text": text, "label": label,
                "shape": first["shape"], "colour": first["colour"]}
