"""Multi-caption image sets: COCO / Flickr8k / Flickr30k in the Karpathy-split JSON, or a COCO
captions annotations file.

    vlkd.build_dataset("coco-captions", path="dataset_coco.json", root="coco/", split="test")

Two layouts are read (told apart by their keys):

- Karpathy split (``dataset_coco.json``, ``dataset_flickr30k.json``, ...): ``images[]`` with
  ``filename``, optional ``filepath`` (a sub-folder of ``root``), ``split`` (train | restval |
  val | test) and ``sentences[].raw``. ``split="train"`` takes ``train`` and ``restval`` (the
  usual Karpathy training set); ``val`` and ``test`` their own images; no split, all of them.
- COCO captions (``captions_val2017.json``): ``images[]`` with ``id`` and ``file_name``, and
  ``annotations[]`` with ``image_id`` and ``caption``. Such a file is one split already: a
  ``{split}`` placeholder in ``path`` picks the file, and without one the file serves any split.

Samples: ``{"image": PIL RGB, "text": its first caption, "captions": all of them, "key": image
path}``.
Training picks one caption per image per epoch (see ``TrainView``); retrieval evaluation counts
all of them as the image's positives. Images without any caption are left out.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import DataError, UsageError
from .robust import BadImageLog, open_image

KARPATHY_SPLITS = {"train": ("train", "restval"), "val": ("val",), "test": ("test",),
                   "restval": ("restval",)}


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"coco-captions: option path: file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: expected a JSON object with an 'images' list "
                        "(Karpathy-split or COCO captions format)")
    return data


def _field(path: Path, where: str, record: dict, key: str):
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{path}: {where} has no '{key}'")
    return record[key]


def read_karpathy(path: Path, data: dict, root: Path, split: str | None) -> list[tuple[str, list[str]]]:
    if split is not None and split not in KARPATHY_SPLITS:
        raise UsageError(f"coco-captions: split '{split}' must be one of {', '.join(KARPATHY_SPLITS)}")
    wanted = KARPATHY_SPLITS.get(split) if split else None
    out = []
    for n, image in enumerate(data["images"]):
        where = f"images[{n}]"
        if wanted is not None and _field(path, where, image, "split") not in wanted:
            continue
        folder = image.get("filepath") or ""
        file = root / folder / str(_field(path, where, image, "filename"))
        captions = [str(_field(path, f"{where}.sentences[{k}]", s, "raw")).strip()
                    for k, s in enumerate(_field(path, where, image, "sentences"))]
        captions = [c for c in captions if c]
        if captions:
            out.append((str(file), captions))
    return out


def read_coco(path: Path, data: dict, root: Path) -> list[tuple[str, list[str]]]:
    files: dict = {}
    for n, image in enumerate(data["images"]):
        files[_field(path, f"images[{n}]", image, "id")] = _field(path, f"images[{n}]", image, "file_name")
    captions: dict = {key: [] for key in files}
    for n, ann in enumerate(data["annotations"]):
        image_id = _field(path, f"annotations[{n}]", ann, "image_id")
        if image_id not in captions:
            raise DataError(f"{path}: annotations[{n}] names image_id {image_id!r}, which is not in images[]")
        text = str(_field(path, f"annotations[{n}]", ann, "caption")).strip()
        if text:
            captions[image_id].append(text)
    return [(str(root / str(files[key])), caps) for key, caps in captions.items() if caps]


class CocoCaptionsDataset(torch.utils.data.Dataset):
    """Images with all their captions, from a Karpathy-split JSON or a COCO captions file.

    Options: ``path`` (the JSON file; ``{split}`` fills in the split for COCO files), ``root``
    (folder the image paths are relative to; default: the JSON file's folder), ``split``
    (train = train + restval, val, test; default all), ``length`` (the first n images),
    ``strict`` (raise on an unreadable image instead of skipping it)."""

    def __init__(self, path: str, root: str | None = None, split: str | None = None,
                 length: int | None = None, strict: bool = False):
        self.split = split
        file = Path(str(path).replace("{split}", split or "train")).expanduser()
        data = _load_json(file)
        base = Path(root).expanduser() if root is not None else file.parent
        if root is not None and not base.is_dir():
            raise UsageError(f"coco-captions: option root: folder not found: {base}")
        if "annotations" in data:
            self.items = read_coco(file, data, base)
        elif data["images"] and isinstance(data["images"][0], dict) and "sentences" in data["images"][0]:
            self.items = read_karpathy(file, data, base, split)
        else:
            raise DataError(f"{file}: neither Karpathy-split (images[].sentences) nor COCO captions "
                            "(annotations[]) format")
        if length is not None:
            self.items = self.items[:length]
        if not self.items:
            raise DataError(f"{file}: no captioned images" + (f" in split '{split}'" if split else ""))
        self.strict = strict
        self.bad_images = BadImageLog()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict | None:
        if not 0 <= index < len(self.items):
            raise IndexError(index)
        file, captions = self.items[index]
        image = open_image(file, file, strict=self.strict, log=self.bad_images)
        if image is None:
            return None
        return {"image": image, "text": captions[0], "captions": list(captions), "key": file}
