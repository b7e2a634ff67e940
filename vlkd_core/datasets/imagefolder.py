"""A classification set stored as one folder per class (torchvision ``ImageFolder`` layout),
captioned with prompt templates.

    root/[split/]<class_name>/<image>.{jpg,png,...}

Class names come from the folder names (sorted; underscores become spaces, so ``golden_retriever``
is prompted as "a photo of a golden retriever."), labels are their indices. With ``split``
("train", "test", ...) the set reads ``root/<split>`` when that folder exists; a root without
split folders is used as it is. Missing or unreadable images are skipped or raise as described in
:mod:`vlkd_core.datasets.robust`.
Samples: ``{"image": PIL RGB, "text": caption, "label": int, "key": "[split/]class/file"}``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError, UsageError
from .captions import class_caption
from .robust import BadImageLog, open_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")
DEFAULT_TEMPLATES = ["a photo of a {}."]


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def resolve_split_root(root: Path, split: str | None) -> Path:
    """``root/split`` if it exists; ``root`` itself when it has no split folders at all."""
    if not root.is_dir():
        raise UsageError(f"imagefolder: root directory {root} does not exist")
    if split is None:
        return root
    if (root / split).is_dir():
        return root / split
    present = [p.name for p in _subfolders(root) if p.name.lower() in SPLIT_NAMES]
    if present:
        raise UsageError(f"imagefolder: no split folder '{split}' in {root}; it has "
                         f"{', '.join(present)} (set the split option)")
    return root


def folder_classname(name: str) -> str:
    """Folder name -> prompt-friendly class name."""
    return name.replace("_", " ").strip()


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images in class folders, captioned from prompt templates.

    Options: ``root``, ``split`` (subfolder used when present; default ``train``), ``templates``
    (a list with ``{}`` for the class name, or a shipped prompt-set name; default
    ``["a photo of a {}."]``), ``classnames`` (list or shipped set name overriding the folder
    names, one per class folder), ``caption`` (``random``: a template chosen per sample from
    ``seed``; ``first``: always the first), ``seed``, ``length`` (first n images), ``strict``
    (raise on an unreadable image instead of skipping it)."""

    def __init__(self, root: str, split: str | None = "train",
                 templates: str | list[str] | None = None, classnames: str | list[str] | None = None,
                 caption: str = "random", seed: int = 0, length: int | None = None,
                 strict: bool = False):
        from ..evaluation.prompts import resolve_list
        if caption not in ("random", "first"):
            raise UsageError(f"imagefolder: caption must be 'random' or 'first', not '{caption}'")
        self.base = Path(root).expanduser()
        self.root = resolve_split_root(self.base, split)
        folders = _subfolders(self.root)
        if not folders:
            raise DataError(f"imagefolder: no class folders in {self.root}")
        self.folders = [f.name for f in folders]
        self.classnames = resolve_list(classnames, "classnames") or [folder_classname(n) for n in self.folders]
        if len(self.classnames) != len(self.folders):
            raise UsageError(f"imagefolder: option classnames has {len(self.classnames)} names but "
                             f"{self.root} has {len(self.folders)} class folders")
        self.templates = resolve_list(templates, "templates") or list(DEFAULT_TEMPLATES)
        if not self.templates:
            raise UsageError("imagefolder: option templates is empty")
        self.samples: list[tuple[Path, int]] = []
        empty = []
        for label, folder in enumerate(folders):
            files = sorted(p for p in folder.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            self.samples.extend((p, label) for p in files)
            if not files:
                empty.append(folder.name)
        if empty and len(empty) < len(folders):  # as torchvision's ImageFolder: a class without images is an error
            raise DataError(f"imagefolder: no image files for class folder(s) {', '.join(empty)} in "
                            f"{self.root} (extensions {', '.join(IMAGE_SUFFIXES)}); add images or remove "
                            "the folder(s)")
        if not self.samples:
            raise DataError(f"imagefolder: no image files ({', '.join(IMAGE_SUFFIXES)}) under {self.root}")
        if length is not None:
            self.samples = self.samples[:length]
        self.split, self.caption, self.seed, self.strict = split, caption, seed, strict
        self.bad_images = BadImageLog()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict | None:
        """The sample, or ``None`` when its image is unreadable (recorded in ``bad_images``)."""
        if not 0 <= index < len(self.samples):
            raise IndexError(index)
        path, label = self.samples[index]
        image = open_image(path, str(path), strict=self.strict, log=self.bad_images)
        if image is None:
            return None
        text = class_caption(self.templates, self.classnames[label], index, self.seed, self.caption)
        return {"image": image, "text": text, "label": label,
                "key": path.relative_to(self.base).as_posix()}
