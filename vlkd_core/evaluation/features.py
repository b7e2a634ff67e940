"""Feature extraction over datasets, with a rich progress bar for long loops."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch


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


def _texts_of(item: dict) -> list[str]:
    """A sample's captions: ``captions`` (list) if present, else ``text`` (str or list)."""
    caps = item.get("captions", item.get("text"))
    if caps is None:
        return []
    return [caps] if isinstance(caps, str) else [str(c) for c in caps]


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


def encode_dataset(model: Any, dataset: Any, batch_size: int = 64, limit: int | None = None,
                   description: str = "encoding images", show_progress: bool = True,
                   need_labels: bool = False) -> EncodedDataset:
    """Runs ``model.encode_images`` over the dataset in batches; collects labels and captions."""
    items, total = _items(dataset, limit)
    feats: list[torch.Tensor] = []
    labels: list[int] = []
    texts: list[str] = []
    owners: list[int] = []
    batch: list[Any] = []
    count = 0
    with progress_bar(description, total, show_progress) as advance:
        for item in items:
            batch.append(item["image"])
            for caption in _texts_of(item):
                texts.append(caption)
                owners.append(count)
            label = item.get("label")
            if label is not None:
                labels.append(int(label))
            elif need_labels:
                from ..errors import DataError
                raise DataError(f"sample {count} has no 'label'; this evaluator needs a labelled dataset")
            count += 1
            if len(batch) == batch_size:
                feats.append(model.encode_images(batch))
                advance(len(batch))
                batch = []
        if batch:
            feats.append(model.encode_images(batch))
            advance(len(batch))
    if not feats:
        from ..errors import DataError
        raise DataError("the evaluation dataset is empty")
    if labels and len(labels) != count:
        from ..errors import DataError
        raise DataError("some samples have a 'label' and others do not")
    return EncodedDataset(torch.cat(feats).float(), torch.tensor(labels, dtype=torch.long), texts, owners)


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
