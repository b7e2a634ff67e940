"""Data for benchmarks/eval_vs_clip_benchmark.py, written once and read by both tools.

- Fashion-MNIST test images: Debian's ``dataset-fashion-mnist`` IDX files when installed, else
  a synthetic stand-in in the same IDX layout (10 classes of drawn shapes), so both tools read
  identical bytes either way. ``raw_copy`` lays the IDX files out as torchvision's
  ``FashionMNIST`` expects them (CLIP_benchmark has no Fashion-MNIST loader of its own).
- A retrieval set: PNG images of one or two coloured shapes, each with several distinct
  captions, in COCO captions format (``val2014/`` + ``coco_test_karpathy.json``), which is the
  layout CLIP_benchmark's ``mscoco_captions`` loader and vlkd's ``coco-captions`` both read.
"""
from __future__ import annotations

import gzip
import json
import random
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {"red": (215, 40, 40), "green": (40, 170, 60), "blue": (45, 75, 220),
           "yellow": (235, 200, 30), "purple": (140, 60, 180), "orange": (240, 130, 30)}
SIZES = {"small": 0.18, "large": 0.30}
RELATIONS = {"above": ((0.5, 0.28), (0.5, 0.72)), "below": ((0.5, 0.72), (0.5, 0.28)),
             "left of": ((0.28, 0.5), (0.72, 0.5)), "right of": ((0.72, 0.5), (0.28, 0.5))}
OPPOSITE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    else:  # cross
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)


def _idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (gzip-compressed, as Debian ships them)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _write_idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(_idx_bytes(array))


def synthetic_fashion_mnist(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` 28x28 grayscale images in IDX files, class = shape x size (10 classes)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images, labels = np.zeros((n, 28, 28), np.uint8), np.zeros(n, np.uint8)
    for i in range(n):
        label = rng.randrange(10)
        image = Image.new("L", (28, 28), 0)
        r = 28 * (0.2 if label < 5 else 0.35) * rng.uniform(0.85, 1.1)
        _draw(ImageDraw.Draw(image), SHAPES[label % 5], 14 + rng.uniform(-2, 2), 14 + rng.uniform(-2, 2),
              r, rng.randint(150, 255))
        images[i], labels[i] = np.asarray(image), label
    _write_idx(root / (IDX_FILES[0] + ".gz"), images)
    _write_idx(root / (IDX_FILES[1] + ".gz"), labels)
    return root


def fashion_mnist_root(work: Path, n_synthetic: int, force_synthetic: bool = False) -> tuple[Path, str]:
    """(folder with the test IDX files, a description of where they came from)."""
    if not force_synthetic and all((DEBIAN_FASHION_MNIST / (f + ".gz")).is_file() for f in IDX_FILES):
        return DEBIAN_FASHION_MNIST, f"Fashion-MNIST test set ({DEBIAN_FASHION_MNIST})"
    root = synthetic_fashion_mnist(work / "fashion-mnist", n_synthetic)
    return root, f"synthetic 10-class shapes in Fashion-MNIST IDX layout ({n_synthetic} images)"


def raw_copy(idx_root: Path, work: Path) -> Path:
    """torchvision's layout: ``<root>/FashionMNIST/raw/<name>`` uncompressed. The training files
    are not needed (train=False) but torchvision checks for them, so tiny empty stand-ins."""
    raw = work / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        (raw / name).write_bytes(gzip.decompress((idx_root / (name + ".gz")).read_bytes()))
    (raw / "train-images-idx3-ubyte").write_bytes(gzip.decompress(_idx_bytes(np.zeros((1, 28, 28)))))
    (raw / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(_idx_bytes(np.zeros(1))))
    return work / "tv"


def _scene(rng: random.Random) -> tuple:
    parts = tuple((rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(SIZES))) for _ in range(2))
    return parts[:1] if rng.random() < 0.3 else parts + (rng.choice(list(RELATIONS)),)


def _captions(scene: tuple) -> list[str]:
    """Three distinct wordings of one scene (so every caption in the set is unique when
    scenes are: ties between identical captions would make the rankings arbitrary)."""
    phrase = [f"a {size} {colour} {shape}" for shape, colour, size in scene[:-1 if len(scene) == 3 else 1]]
    if len(scene) == 1:
        (shape, colour, size), = scene
        return [phrase[0] + ".", f"a picture of {phrase[0]}.", f"one {colour} {shape}, {size}, on grey."]
    relation = scene[2]
    return [f"{phrase[0]} {relation} {phrase[1]}.", f"a picture of {phrase[0]} {relation} {phrase[1]}.",
            f"{phrase[1]} {OPPOSITE[relation]} {phrase[0]}."]


def _render(scene: tuple, rng: random.Random, side: int) -> Image.Image:
    image = Image.new("RGB", (side, side), tuple(225 + rng.randint(-10, 10) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    centres = [(0.5, 0.5)] if len(scene) == 1 else list(RELATIONS[scene[2]])
    for (shape, colour, size), (cx, cy) in zip(scene, centres):
        scale = 1.0 if len(scene) == 1 else 0.7
        _draw(draw, shape, cx * side, cy * side, SIZES[size] * side * scale, COLOURS[colour])
    return image


def write_captions_set(root: Path, n_images: int, side: int = 32, seed: int = 1) -> tuple[Path, Path]:
    """``n_images`` distinct scenes with three captions each; returns (annotation JSON, image
    folder)."""
    images_dir = root / "val2014"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng, seen = random.Random(seed), set()
    images, annotations = [], []
    while len(images) < n_images:
        scene = _scene(rng)
        # "A above B" and "B below A" share a caption: one key for both
        key = scene if len(scene) == 1 else max(scene, (scene[1], scene[0], OPPOSITE[scene[2]]))
        if key in seen:
            continue
        seen.add(key)
        image_id, name = len(images) + 1, f"{len(images):06d}.png"
        _render(scene, rng, side).save(images_dir / name)
        images.append({"id": image_id, "file_name": name})
        first = len(annotations) + 1  # annotation ids must be unique: pycocotools indexes by them
        annotations += [{"id": first + k, "image_id": image_id, "caption": c}
                        for k, c in enumerate(_captions(scene))]
    path = root / "coco_test_karpathy.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path, images_dir
