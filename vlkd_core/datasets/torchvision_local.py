"""torchvision classification datasets read from a local root (``download=False`` always:
evaluation must not fetch data behind the user's back).

    vlkd.build_dataset("torchvision", dataset="CIFAR10", root="~/data", split="test")

Supported names: CIFAR10, CIFAR100, MNIST, FashionMNIST, KMNIST, STL10, Food101, SVHN, DTD,
Flowers102, OxfordIIITPet, StanfordCars, FGVCAircraft, EuroSAT, GTSRB, Country211, PCAM,
RenderedSST2 (each with the split convention torchvision uses for it).
Samples: ``{"image": PIL RGB, "text": caption from the prompt templates, "label": int}``.
Class names come from the shipped prompt set when there is one (prompt-friendly names), else
from torchvision's ``classes``.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import UsageError
from .._model.images import to_rgb
from .captions import class_caption

# name -> (how the split is passed, shipped prompt set or None)
TRAIN_FLAG = "train"     # train=True/False
SPLIT_ARG = "split"      # split="train"/"test"/...
KNOWN = {
    "CIFAR10": (TRAIN_FLAG, "cifar10"), "CIFAR100": (TRAIN_FLAG, "cifar100"),
    "MNIST": (TRAIN_FLAG, "mnist"), "FashionMNIST": (TRAIN_FLAG, "fashion-mnist"),
    "KMNIST": (TRAIN_FLAG, None), "STL10": (SPLIT_ARG, "stl10"), "Food101": (SPLIT_ARG, "food101"),
    "SVHN": (SPLIT_ARG, "mnist"), "DTD": (SPLIT_ARG, None), "Flowers102": (SPLIT_ARG, None),
    "OxfordIIITPet": (SPLIT_ARG, None), "StanfordCars": (SPLIT_ARG, None),
    "FGVCAircraft": (SPLIT_ARG, None), "EuroSAT": (None, None), "GTSRB": (SPLIT_ARG, None),
    "Country211": (SPLIT_ARG, None), "PCAM": (SPLIT_ARG, None), "RenderedSST2": (SPLIT_ARG, None),
}
OXFORD_PET_SPLITS = {"train": "trainval", "test": "test"}


def _split_kwargs(name: str, split: str) -> dict[str, Any]:
    how = KNOWN[name][0]
    if how == TRAIN_FLAG:
        if split not in ("train", "test"):
            raise UsageError(f"torchvision {name}: split must be 'train' or 'test', not '{split}'")
        return {"train": split == "train"}
    if how == SPLIT_ARG:
        if name == "OxfordIIITPet":
            split = OXFORD_PET_SPLITS.get(split, split)
        return {"split": split}
    return {}


class TorchvisionDataset(torch.utils.data.Dataset):
    """Options: ``dataset`` (torchvision class name), ``root``, ``split``, ``length``, ``seed`` and
    ``caption`` (random | first template), ``templates`` / ``classnames`` (shipped set name or
    list; default: the set matching the dataset, else ``a photo of a {}.`` and torchvision's
    class names)."""

    def __init__(self, dataset: str = "CIFAR10", split: str = "train", root: str = "data",
                 length: int | None = None, seed: int = 0, caption: str = "random",
                 templates: str | list[str] | None = None, classnames: str | list[str] | None = None):
        name = dataset
        if name not in KNOWN:
            from ..errors import UnknownComponentError
            raise UnknownComponentError("torchvision dataset", name, KNOWN)
        root = os.path.expanduser(root)
        if not os.path.isdir(root):
            raise UsageError(f"torchvision {name}: root directory '{root}' does not exist "
                             f"(vlkd never downloads evaluation data; set the root option)")
        import torchvision.datasets as tvd
        try:
            self.base = getattr(tvd, name)(root, download=False, **_split_kwargs(name, split))
        except (RuntimeError, FileNotFoundError, OSError) as exc:
            raise UsageError(f"torchvision {name}: files not found under root='{root}' "
                             f"(download it once with torchvision, download=True): {exc}") from None
        from ..evaluation.prompts import load_prompt_set, resolve_list
        shipped = KNOWN[name][1]
        record = load_prompt_set(shipped) if shipped else {}
        tv_names = [str(c) for c in getattr(self.base, "classes", [])]
        self.classnames = resolve_list(classnames, "classnames") or record.get("classnames") or tv_names
        self.templates = resolve_list(templates, "templates") or record.get("templates") or ["a photo of a {}."]
        self.name, self.split, self.seed, self.caption = name, split, seed, caption
        self.length = len(self.base) if length is None else min(length, len(self.base))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        image, label = self.base[index]
        label = int(label)
        name = self.classnames[label] if 0 <= label < len(self.classnames) else str(label)
        return {"image": to_rgb(image), "label": label,
                "text": class_caption(self.templates, name, index, self.seed, self.caption)}
