"""Training data: the dataset plugin + the tower's preprocessing + a resumable sampler.

Exact resume needs the same batches and the same augmentations: the sampler is a pure function
of (seed, epoch, rank) and can start mid-epoch, and every sample's augmentation is seeded from
(seed, epoch, index), so neither worker processes nor interruptions change what is seen. The
loader draws its worker base seed from its own seeded generator, never from the global RNG, so
starting an epoch's iterator (at the start, or mid-epoch after a resume) leaves the global RNG,
which dropout and stochastic depth use, exactly where the checkpoint put it.
"""
from __future__ import annotations

import functools
import signal
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .._model import encoding
from ..datasets.captions import captions_of, training_caption
from ..datasets.keys import sample_key
from .._model.images import ImagePreprocess, PairedViews
from ..datasets.sampling import EpochSampler, derive_seed, view_of, view_seed
from .._runtime.workers import default_workers


def seeded_transform(transform: Callable, image: Any, train: bool, seed: int) -> torch.Tensor:
    """``transform(image, train=train)`` with its randomness seeded by ``seed``: a fresh
    generator for the core's transforms (cheap), the global RNG forked and seeded for a tower's
    own ``preprocess`` (which draws from it)."""
    if isinstance(transform, (ImagePreprocess, PairedViews)):
        return transform(image, train=train, generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(image, train=train)


@dataclass(frozen=True)
class Views:
    """``--augmentations K``: every sample has K fixed augmentations and each epoch shows one
    (:func:`~vlkd_core.datasets.sampling.view_of`); ``replay`` (a reinforced feature store's
    recorded crops, :class:`~vlkd_core.features.reinforce.RecordedCrops`) renders the recorded
    crop instead of drawing it again."""

    count: int
    replay: Any = None


class _Augmenting:
    """The per-sample augmentation shared by the two views: seeded by (seed, epoch, ``draw``), or
    with :class:`Views` by (seed, key, view), or replayed from a store's record."""
    views: Views | None = None

    def _image(self, item: dict, key: str, draw: object) -> tuple[Any, int | None]:
        if self.views is None or not self.train:
            return seeded_transform(self.transform, item["image"], self.train,
                                    derive_seed(self.seed, self.epoch, draw)), None
        view = view_of(self.seed, self.epoch, key, self.views.count)
        if self.views.replay is not None:
            return self.views.replay.render(item["image"], key, view, self.transform), view
        return seeded_transform(self.transform, item["image"], True, view_seed(self.seed, key, view)), view


class TrainView(_Augmenting, Dataset):
    """Applies the image tower's preprocessing with a per-sample seed; None for bad samples."""

    def __init__(self, base: Dataset, image_transform: Callable, seed: int, train: bool, views: Views | None = None):
        self.base, self.transform, self.seed, self.train, self.views = base, image_transform, seed, train, views
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict | None:
        item = self.base[index]
        if item is None:
            return None
        key = sample_key(item, index)
        image, view = self._image(item, key, index)
        return _row(item, index, key, image, self.seed, self.epoch, index, view)


class IterableTrainView(_Augmenting, IterableDataset):
    """The same for streaming datasets (webdataset): seeded by the sample key."""

    def __init__(self, base: IterableDataset, image_transform: Callable, seed: int, train: bool,
                 views: Views | None = None):
        self.base, self.transform, self.seed, self.train, self.views = base, image_transform, seed, train, views
        self.epoch = 0

    def __iter__(self):
        for n, item in enumerate(self.base):
            if item is None:
                yield None
                continue
            key = sample_key(item, n)
            image, view = self._image(item, key, key)
            yield _row(item, n, key, image, self.seed, self.epoch, key, view)


def _row(item: dict, index: int, key: str, image: torch.Tensor, seed: int, epoch: int, draw: object,
         view: int | None = None) -> dict:
    """What the loader collates of one sample; its caption drawn by (seed, epoch, ``draw``)."""
    label = item.get("label")
    return {"index": index, "key": key, "image": image,
            "text": training_caption(captions_of(item), seed, epoch, draw),
            "label": -1 if label is None else int(label), "view": -1 if view is None else view}


@dataclass
class Batch:
    images: torch.Tensor
    texts: list[str]
    keys: list[str]
    labels: torch.Tensor
    skipped: int
    indices: torch.Tensor | None = None  # dataset index of each row (LossNeeds.sample_ids)
    tokens: Any = None  # the captions through the text tower's training preprocess, when the loader ran it
    teacher_images: torch.Tensor | None = None  # the same views for a --teacher-model (PairedViews)
    views: torch.Tensor | None = None  # which fixed view (--augmentations) each row shows; -1: none

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> "Batch":
        """The first ``n`` rows (every rank trims to one size when a loss gathers)."""
        if n >= len(self):
            return self
        return Batch(self.images[:n], self.texts[:n], self.keys[:n], self.labels[:n], self.skipped,
                     None if self.indices is None else self.indices[:n], _rows(self.tokens, n),
                     None if self.teacher_images is None else self.teacher_images[:n],
                     None if self.views is None else self.views[:n])


def _rows(tokens: Any, n: int) -> Any:
    """The first ``n`` rows of a token tensor or of a tokenizer's dict of tensors."""
    if tokens is None:
        return None
    if isinstance(tokens, torch.Tensor):
        return tokens[:n]
    return {k: v[:n] if isinstance(v, torch.Tensor) else v for k, v in tokens.items()}


def collate(items: list[dict | None], tokenize: Callable[[list[str]], Any] | None = None) -> Batch | None:
    """A batch of the readable items; ``tokenize`` (the text tower's training preprocess, given
    when the text tower trains) runs here, in the loader's workers, not on the training thread."""
    good = [it for it in items if it is not None]
    if not good:
        return Batch(torch.empty(0), [], [], torch.empty(0, dtype=torch.long), len(items),
                     torch.empty(0, dtype=torch.long))
    texts = [it["text"] for it in good]
    paired = isinstance(good[0]["image"], tuple)  # (student, teacher model) views
    images = [it["image"][0] if paired else it["image"] for it in good]
    return Batch(torch.stack(images), texts,
                 [it["key"] for it in good], torch.tensor([it["label"] for it in good]),
                 len(items) - len(good), torch.tensor([it["index"] for it in good], dtype=torch.long),
                 tokenize(texts) if tokenize is not None else None,
                 torch.stack([it["image"][1] for it in good]) if paired else None,
                 torch.tensor([it.get("view", -1) for it in good], dtype=torch.long))


class TrainingTokens:
    """The tower's training tokens (:func:`vlkd_core._model.encoding.tokens`) as a loader's tokenizer
    (workers fork with it)."""

    def __init__(self, tower: Any):
        self.tower = tower

    def __call__(self, texts: list[str]) -> Any:
        return encoding.tokens(self.tower, texts, train=True)


def _worker_init(worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the main process, which stops after the step
    (a terminal's Ctrl-C reaches every process of the job)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_loader(dataset: Dataset, image_transform: Callable, batch_size: int, seed: int,
                 rank: int, world: int, episode_size: int | None, workers: int | None, train_transforms: bool,
                 tokenize: Callable[[list[str]], Any] | None = None, views: Views | None = None):
    """Returns (loader, view, sampler-or-None); ``workers`` None: :func:`vlkd_core._runtime.workers.default_workers`
    for this rank's epoch."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "loader", rank))
    collate_fn = functools.partial(collate, tokenize=tokenize) if tokenize is not None else collate
    if isinstance(dataset, IterableDataset):
        workers = default_workers(None, batch_size) if workers is None else workers
        view = IterableTrainView(dataset, image_transform, seed, train_transforms, views)
        loader = DataLoader(view, batch_size=batch_size, collate_fn=collate_fn, num_workers=workers,
                            generator=generator, worker_init_fn=_worker_init if workers else None)
        return loader, view, None
    view = TrainView(dataset, image_transform, seed, train_transforms, views)
    sampler = EpochSampler(len(dataset), batch_size, seed, rank, world, episode_size)
    workers = default_workers(len(sampler), batch_size) if workers is None else workers
    loader = DataLoader(view, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                        num_workers=workers, drop_last=True, persistent_workers=False,
                        generator=generator, worker_init_fn=_worker_init if workers else None)
    return loader, view, sampler
