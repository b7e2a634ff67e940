"""Feature extraction over datasets, with a rich progress bar for long loops."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .._model import encoding
from ..datasets.captions import captions_of
from .._runtime.workers import default_workers


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """Yields ``advance(n)``; shows a transient rich bar on a terminal, stays silent otherwise
    (logs and CI do not fill up with redraws)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _items(dataset: Any, limit: int | None) -> tuple[Iterator[dict], int | None]:
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        n = len(dataset) if limit is None else min(limit, len(dataset))
        return (dataset[i] for i in range(n)), n
    def gen():
        for i, item in enumerate(dataset):
            if limit is not None and i >= limit:
                return
            yield item
    return gen(), limit


@dataclass
class EncodedDataset:
    """Image features of a dataset plus its labels and captions.

    ``texts`` lists every caption, ``text_to_image[j]`` the image index of caption j;
    ``labels`` is empty when the dataset has no labels.
    """

    image_features: torch.Tensor
    labels: torch.Tensor
    texts: list[str] = field(default_factory=list)
    text_to_image: list[int] = field(default_factory=list)


class _Prepared(torch.utils.data.Dataset):
    """The first ``n`` samples of a map-style dataset as (image tensor, label, captions), so
    decoding and the eval transform run in DataLoader workers, not between forward passes."""

    def __init__(self, dataset: Any, n: int, transform: Callable):
        self.dataset, self.n, self.transform = dataset, n, transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        item = self.dataset[index]
        if item is None:  # an unreadable image the dataset chose to skip
            return None
        return self.transform(item["image"]), item.get("label"), captions_of(item)


class _Collate:
    """Stacks a batch (None samples dropped), then applies the batch part of the transform."""

    def __init__(self, finish: Callable | None):
        self.finish = finish

    def __call__(self, batch: list):
        kept = [b for b in batch if b is not None]
        if not kept:
            return None
        images = torch.stack([b[0] for b in kept])
        return (self.finish(images) if self.finish else images), [b[1] for b in kept], [b[2] for b in kept]


class _Normalize:
    """ToTensor's ``/255`` and Normalize's ``(x - mean) / std`` on a whole uint8 batch: the same
    float operations as per sample, so the same values, for a fraction of the calls."""

    def __init__(self, mean, std):
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().div_(255).sub_(self.mean).div_(self.std)


def split_transform(transform: Callable) -> tuple[Callable, Callable | None]:
    """(per-sample part, per-batch part) of an eval transform: a torchvision ``Compose`` ending
    in ``ToTensor, Normalize`` stops at a uint8 tensor per sample and is finished per batch;
    anything else runs whole per sample."""
    from torchvision import transforms as T
    steps = list(getattr(transform, "transforms", []))
    if len(steps) < 2 or type(steps[-2]) is not T.ToTensor or type(steps[-1]) is not T.Normalize:
        return transform, None
    return T.Compose([*steps[:-2], T.PILToTensor()]), _Normalize(steps[-1].mean, steps[-1].std)


def _image_side(model: Any) -> tuple[nn.Module, nn.Module] | None:
    """A DualEncoder's image tower and head, which take preprocessed tensors; None for a model
    that offers only the evaluator API (``encode_images`` on PIL lists)."""
    from .._model.model import DualEncoder
    return (model.image_tower, model.image_head) if isinstance(model, DualEncoder) else None


def _batches(model: Any, dataset: Any, batch_size: int, limit: int | None,
             workers: int | None) -> Iterator[tuple[Callable[[], torch.Tensor], list, list]]:
    """(features thunk, labels, captions) per batch: a DualEncoder's tower and head on tensors
    the DataLoader's workers preprocess (:mod:`vlkd_core._model.encoding`), else ``model.encode_images``
    on PIL lists in this process."""
    side = _image_side(model)
    if side is not None and hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        n = len(dataset) if limit is None else min(limit, len(dataset))
        workers = default_workers(n, batch_size) if workers is None else workers
        tower, head = side
        device = model.device
        # own generator: starting a DataLoader must not draw from the training RNG
        per_sample, per_batch = split_transform(encoding.image_transform(tower))
        loader = torch.utils.data.DataLoader(
            _Prepared(dataset, n, per_sample), batch_size=batch_size, num_workers=workers,
            collate_fn=_Collate(per_batch), generator=torch.Generator())
        for batch in loader:
            if batch is not None:
                images, labels, captions = batch
                yield (lambda x=images: _normalized(encoding.features(tower, head, x, device))), labels, captions
        return
    items, _ = _items(dataset, limit)
    chunk: list = []
    for item in items:
        if item is None:
            continue
        chunk.append(item)
        if len(chunk) == batch_size:
            yield _pil_batch(model, chunk)
            chunk = []
    if chunk:
        yield _pil_batch(model, chunk)


def _pil_batch(model: Any, chunk: list):
    images = [it["image"] for it in chunk]
    return (lambda: model.encode_images(images)), [it.get("label") for it in chunk], [captions_of(it) for it in chunk]


def _normalized(feats: torch.Tensor) -> torch.Tensor:
    """What ``DualEncoder.encode_images`` returns: float32 on the CPU, L2-normalised."""
    return F.normalize(feats.float().cpu(), dim=-1)


def encode_dataset(model: Any, dataset: Any, batch_size: int = 64, limit: int | None = None,
                   description: str = "encoding images", show_progress: bool = True,
                   need_labels: bool = False, workers: int | None = None) -> EncodedDataset:
    """Image features of the dataset in batches, with its labels and captions. ``workers``:
    DataLoader processes decoding and transforming images (None: :func:`default_workers`).
    Samples the dataset returns as None (unreadable images it skips) are left out."""
    total = min(limit, len(dataset)) if limit is not None and hasattr(dataset, "__len__") else \
        (len(dataset) if hasattr(dataset, "__len__") else limit)
    feats: list[torch.Tensor] = []
    labels: list = []
    texts: list[str] = []
    owners: list[int] = []
    with progress_bar(description, total, show_progress) as advance:
        for encode, batch_labels, batch_texts in _batches(model, dataset, batch_size, limit, workers):
            for label, captions in zip(batch_labels, batch_texts):
                texts.extend(captions)
                owners.extend([len(labels)] * len(captions))
                labels.append(label)
            feats.append(encode())
            advance(len(batch_labels))
    return _assemble(feats, labels, texts, owners, need_labels)


def _assemble(feats: list, labels: list, texts: list, owners: list, need_labels: bool) -> EncodedDataset:
    from ..errors import DataError
    if not feats:
        raise DataError("the evaluation dataset is empty")
    given = [label is not None for label in labels]
    if need_labels and not all(given):
        raise DataError(f"sample {given.index(False)} has no 'label'; this evaluator needs a labelled dataset")
    if any(given) and not all(given):
        raise DataError("some samples have a 'label' and others do not")
    label_tensor = torch.tensor([int(x) for x in labels] if all(given) else [], dtype=torch.long)
    return EncodedDataset(torch.cat(feats).float(), label_tensor, texts, owners)


def encode_texts(model: Any, texts: list[str], batch_size: int = 256, description: str = "encoding texts",
                 show_progress: bool = True) -> torch.Tensor:
    """``model.encode_texts`` in batches with a progress bar."""
    out = []
    with progress_bar(description, len(texts), show_progress) as advance:
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            out.append(model.encode_texts(chunk))
            advance(len(chunk))
    return torch.cat(out).float() if out else torch.empty(0, 0)
