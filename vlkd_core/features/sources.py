"""The units of work of an extraction: whole input shards.

A streaming set that names its shards (``urls``) and reads one on its own (``shard_items(url)``,
as the builtin webdataset reader does) gives one unit per shard; a map-style set gives one unit
per fixed range of ``shard_size`` indices. A unit is read in its own order and encoded in batches
that start at its beginning, so its features do not depend on which rank, or how many ranks,
read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from torch.utils.data import IterableDataset

from ..datasets.captions import captions_of
from ..datasets.keys import caption_entry, sample_key
from ..errors import UsageError


@dataclass(frozen=True)
class Unit:
    index: int
    source: str                                      # the input shard's name, or "rows A-B"
    items: Callable[[], Iterator[tuple[str, dict]]]  # (sample key, sample) for readable samples
    size: int | None                                 # samples, when known up front


def _shard_units(dataset: Any) -> list[Unit]:
    def items(url: str) -> Iterator[tuple[str, dict]]:
        for item in dataset.shard_items(url):
            if item is None:
                continue  # unreadable: skipped with the reader's warning, as training skips it
            if "key" not in item:
                raise UsageError(f"{url}: a sample without a key; a feature store needs keyed samples")
            yield str(item["key"]), item
    return [Unit(i, Path(str(url)).name, lambda url=url: items(url), None)
            for i, url in enumerate(dataset.urls)]


def _range_units(dataset: Any, shard_size: int) -> list[Unit]:
    def items(start: int, stop: int) -> Iterator[tuple[str, dict]]:
        for index in range(start, stop):
            item = dataset[index]
            if item is not None:  # the key training gives the sample (TrainView)
                yield sample_key(item, index), item
    n = len(dataset)
    return [Unit(i, f"rows {s}-{min(s + shard_size, n) - 1}", lambda s=s: items(s, min(s + shard_size, n)),
                 min(s + shard_size, n) - s) for i, s in enumerate(range(0, n, shard_size))]


def units_of(dataset: Any, shard_size: int) -> list[Unit]:
    if isinstance(dataset, IterableDataset):
        if not (hasattr(dataset, "urls") and callable(getattr(dataset, "shard_items", None))):
            raise UsageError("this streaming dataset does not name its shards (urls, shard_items): "
                             "it cannot be split into resumable units")
        return _shard_units(dataset)
    return _range_units(dataset, shard_size)


def entries_of(key: str, item: dict, side: str) -> list[str]:
    """The store entries a sample needs on ``side`` (see :mod:`.layout` for the scheme)."""
    if side == "image":
        return [key]
    return list(dict.fromkeys(caption_entry(key, c) for c in captions_of(item)))
