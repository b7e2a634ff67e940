"""Reading datasets in the ELEVATER / vision-datasets layout with the ``vision-datasets`` package.

Two ways to describe where the data is:

1. ``dataset_json``: a vision-datasets registry file (the ELEVATER toolkit ships
   ``vision_benchmark/resources/datasets/vision_datasets.json``); ``root`` is the local directory
   its ``root_folder`` entries are relative to (what the toolkit calls ``--data-dir``).
2. No json: every sub-directory ``root/<name>/`` holding a labelmap (``labels.txt`` or
   ``labelmap.txt``) and index files (``train.txt``, ``val.txt``, ``test.txt``; lines
   ``<zip>@<path inside zip> <label>[,<label>...]`` or a plain relative path) is a dataset.
   A comma in a label column makes it multi-label.

Images are read straight out of the zips (vision-datasets' FileReader); nothing is downloaded.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlkd_core.errors import DataError, UsageError
from vlkd_core.sdk import to_rgb

from .catalog import MULTILABEL, shipped_prompts

USAGE_NAMES = ("train", "val", "test")
LABELMAPS = ("labels.txt", "labelmap.txt")
INDEX_CANDIDATES = {"train": ("train.txt", "train_images.txt", "train_ic.txt"),
                    "val": ("val.txt", "valid.txt", "val_ic.txt"),
                    "test": ("test.txt", "test_images.txt", "test_ic.txt")}


def _infer_info(root: Path, name: str) -> dict | None:
    """A vision-datasets info dict for ``root/name`` in the simple layout, or None."""
    folder = root / name
    labelmap = next((f for f in LABELMAPS if (folder / f).is_file()), None)
    splits = {u: next((f for f in INDEX_CANDIDATES[u] if (folder / f).is_file()), None) for u in USAGE_NAMES}
    if labelmap is None or not any(splits.values()):
        return None
    multilabel = name in MULTILABEL
    for index in filter(None, splits.values()):
        with open(folder / index, encoding="utf-8") as f:
            if any("," in line.rsplit(" ", 1)[-1] for line in f if line.strip()):
                multilabel = True
    info = {"name": name, "version": 1, "root_folder": name, "labelmap": labelmap,
            "type": "classification_multilabel" if multilabel else "classification_multiclass"}
    for usage, index in splits.items():
        if index:
            info[usage] = {"index_path": index, "files_for_local_usage": []}
    return info


@lru_cache(maxsize=16)
def registry_infos(root: str, dataset_json: str | None = None) -> tuple[dict, ...]:
    """The dataset info dicts available: from ``dataset_json`` or discovered under ``root``."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UsageError(f"elevater: root directory '{base}' does not exist")
    if dataset_json:
        path = Path(dataset_json).expanduser()
        if not path.is_file():
            raise UsageError(f"elevater: dataset_json file '{path}' not found")
        infos = json.loads(path.read_text(encoding="utf-8"))
        return tuple(i for i in infos if str(i.get("type", "")).startswith("classification"))
    found = [info for d in sorted(base.iterdir()) if d.is_dir() and (info := _infer_info(base, d.name))]
    if not found:
        raise UsageError(f"elevater: no dataset under root '{base}' (expected <name>/labels.txt and "
                         f"<name>/train.txt|test.txt, or pass dataset_json=)")
    return tuple(found)


def available_datasets(root: str, dataset_json: str | None = None) -> list[str]:
    return [i["name"] for i in registry_infos(str(root), dataset_json)]


def has_split(root: str, name: str, split: str, dataset_json: str | None = None) -> bool:
    info = next((i for i in registry_infos(str(root), dataset_json) if i["name"] == name), None)
    return bool(info and split in info)


class ElevaterSplit(torch.utils.data.Dataset):
    """One split of one dataset: samples ``{"image", "text", "label", "targets"}``.

    ``label`` is the class id (the first label for multi-label sets), ``targets`` the list of all
    label ids. Attributes: ``classnames`` (shipped ELEVATER names when their count matches the
    labelmap, else the labelmap's), ``prompt_classnames`` (may hold synonym lists),
    ``templates``, ``multilabel``, ``num_classes``, ``targets`` (``[N]`` ints or ``[N, C]``
    multi-hot numpy array, available without decoding any image).
    """

    def __init__(self, split: str = "train", root: str = ".", dataset: str = "cifar-10",
                 dataset_json: str | None = None, length: int | None = None):
        name = dataset
        if split not in USAGE_NAMES:
            raise UsageError(f"elevater: split must be one of {', '.join(USAGE_NAMES)}, not '{split}'")
        from vision_datasets import DatasetHub, Usages
        infos = registry_infos(str(root), dataset_json)
        names = [i["name"] for i in infos]
        if name not in names:
            from vlkd_core.errors import UnknownComponentError
            raise UnknownComponentError("ELEVATER dataset", name, names, where=f"root '{root}'")
        info = next(i for i in infos if i["name"] == name)
        if split not in info:
            raise UsageError(f"elevater: dataset '{name}' has no '{split}' split (has "
                             f"{', '.join(u for u in USAGE_NAMES if u in info)})")
        hub = DatasetHub(json.dumps([info]), None, str(Path(root).expanduser()))
        try:
            self.vd = hub.create_vision_dataset(name, usage=getattr(Usages, split.upper()))
        except (OSError, ValueError) as exc:
            raise DataError(f"elevater: cannot read {name}/{split} under '{root}': {exc}") from None
        if self.vd is None:
            raise DataError(f"elevater: vision-datasets found no '{split}' data for '{name}' under '{root}'")
        self.name, self.split = name, split
        self.multilabel = "multilabel" in info["type"]
        labelmap = [c.name for c in self.vd.categories] if self.vd.categories else []
        ids = [[int(l.category_id) for l in img.labels] for img in self.vd.dataset_manifest.images]
        self.num_classes = len(labelmap) or (max(max(i) for i in ids if i) + 1)
        shipped = shipped_prompts(name)
        if shipped and len(shipped["classnames"]) == self.num_classes:
            self.prompt_classnames = shipped["classnames"]
            self.templates = shipped["templates"]
        else:  # a dataset ELEVATER does not know, or a different label set: use the labelmap
            self.prompt_classnames = labelmap or [str(i) for i in range(self.num_classes)]
            self.templates = (shipped or {}).get("templates") or ["a photo of a {}."]
        self.classnames = [c[0] if isinstance(c, list) else c for c in self.prompt_classnames]
        n = len(ids) if length is None else min(length, len(ids))
        self._ids = ids[:n]
        if self.multilabel:
            self.targets = np.zeros((n, self.num_classes), dtype=int)
            for row, labels in enumerate(self._ids):
                self.targets[row, labels] = 1
        else:
            if any(len(i) != 1 for i in self._ids):
                raise DataError(f"elevater: {name}/{split} is multi-class but a sample has "
                                f"{min(len(i) for i in self._ids if len(i) != 1)} labels")
            self.targets = np.array([i[0] for i in self._ids], dtype=int)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self._ids):
            raise IndexError(index)
        image, _, _ = self.vd[index]
        labels = self._ids[index]
        first = labels[0] if labels else 0
        caption = self.templates[0].replace("{}", self.classnames[first])
        return {"image": to_rgb(image), "text": caption, "label": first, "targets": labels}
