"""Training data: the dataset plugin + the tower's preprocessing + a resumable sampler.

Exact resume needs the same batches and the same augmentations: the sampler is a pure function
of (seed, epoch, rank) and can start mid-epoch, and every sample's augmentation is seeded from
(seed, epoch, index), so neither worker processes nor interruptions change what is seen.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler


def sample_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha1("/".join(map(str, parts)).encode()).digest()[:8], "little") % (2**63)


class EpochSampler(Sampler[int]):
    """Seeded permutation per epoch, optionally an episode (a fresh random subset of
    ``episode_size`` indices per epoch), split across ranks, whole batches only, resumable."""

    def __init__(self, length: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 episode_size: int | None = None):
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.rank, self.world = rank, world
        self.episode = min(episode_size or length, length)
        self.epoch, self.start_batch = 0, 0
        if self.batches_per_epoch == 0:
            from ..errors import UsageError
            raise UsageError(f"--batch-size {batch_size} x {world} process(es) is larger than the "
                             f"{self.episode} samples per epoch; lower --batch-size")

    @property
    def batches_per_epoch(self) -> int:
        return self.episode // (self.batch_size * self.world)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(sample_seed(self.seed, "epoch", self.epoch))
        order = torch.randperm(self.length, generator=g)[: self.episode]
        used = order[: self.batches_per_epoch * self.batch_size * self.world]
        mine = used[self.rank::self.world].tolist()
        return mine[self.start_batch * self.batch_size:]

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


class TrainView(Dataset):
    """Applies the image tower's preprocessing with a per-sample seed; None for bad samples."""

    def __init__(self, base: Dataset, image_transform: Callable, seed: int, train: bool):
        self.base, self.transform, self.seed, self.train = base, image_transform, seed, train
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict | None:
        item = self.base[index]
        if item is None:
            return None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            image = self.transform(item["image"], train=self.train)
        label = item.get("label")
        return {"index": index, "key": str(item.get("key", index)), "image": image,
                "text": item["text"], "label": -1 if label is None else int(label)}


class IterableTrainView(IterableDataset):
    """The same for streaming datasets (webdataset): seeded by the sample key."""

    def __init__(self, base: IterableDataset, image_transform: Callable, seed: int, train: bool):
        self.base, self.transform, self.seed, self.train = base, image_transform, seed, train
        self.epoch = 0

    def __iter__(self):
        for n, item in enumerate(self.base):
            if item is None:
                yield None
                continue
            key = str(item.get("key", n))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, self.epoch, key))
                image = self.transform(item["image"], train=self.train)
            label = item.get("label")
            yield {"index": n, "key": key, "image": image, "text": item["text"],
                   "label": -1 if label is None else int(label)}


@dataclass
class Batch:
    images: torch.Tensor
    texts: list[str]
    keys: list[str]
    labels: torch.Tensor
    skipped: int

    def __len__(self) -> int:
        return len(self.texts)


def collate(items: list[dict | None]) -> Batch | None:
    good = [it for it in items if it is not None]
    if not good:
        return Batch(torch.empty(0), [], [], torch.empty(0, dtype=torch.long), len(items))
    return Batch(torch.stack([it["image"] for it in good]), [it["text"] for it in good],
                 [it["key"] for it in good], torch.tensor([it["label"] for it in good]),
                 len(items) - len(good))


def build_loader(dataset: Dataset, image_transform: Callable, batch_size: int, seed: int,
                 rank: int, world: int, episode_size: int | None, workers: int, train_transforms: bool):
    """Returns (loader, view, sampler-or-None)."""
    if isinstance(dataset, IterableDataset):
        view = IterableTrainView(dataset, image_transform, seed, train_transforms)
        loader = DataLoader(view, batch_size=batch_size, collate_fn=collate, num_workers=workers)
        return loader, view, None
    view = TrainView(dataset, image_transform, seed, train_transforms)
    sampler = EpochSampler(len(dataset), batch_size, seed, rank, world, episode_size)
    loader = DataLoader(view, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=workers, drop_last=True, persistent_workers=False)
    return loader, view, sampler
