"""Sampling for training: a seeded permutation per epoch, optionally an *episode* (a fresh random
subset of ``episode_size`` samples each epoch, ITRA's "episodic training"), split across DDP
ranks like :class:`torch.utils.data.DistributedSampler`, and resumable mid-epoch.

    sampler = EpochSampler(len(dataset), batch_size=64, episode_size=10_000, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)             # a new episode; same on every rank
        for batch in DataLoader(dataset, batch_size=64, sampler=sampler, ...): ...

The episode of epoch ``e`` is the first ``episode_size`` indices of a permutation seeded by
``(seed, e)``: every rank computes the same episode without communicating, truncates it to whole
batches on every rank (equal counts keep DDP ranks in lock-step; a rank with one batch more
would hang in its collective ops) and takes the interleaved slice ``episode[rank::world]``.
``set_epoch(e, start_batch=k)`` skips the first ``k`` batches: a resumed run sees exactly the
batches an uninterrupted one would have.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler

from ..errors import UsageError


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that is a stable function of ``parts`` (unlike ``hash()``, which is salted
    per process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


def distributed_info(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the given values, else torch.distributed's when it is
    initialised, else ``(0, 1)``."""
    import torch.distributed as dist
    if world_size is None:
        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if rank is None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank {rank} is not in range for world_size {world_size}")
    return rank, world_size


class EpochSampler(Sampler[int]):
    """Seeded, episodic, rank-sharded, whole-batch, resumable index sampler."""

    def __init__(self, data: Sized | int, batch_size: int = 1, seed: int = 0, rank: int | None = None,
                 world: int | None = None, episode_size: int | None = None):
        length = data if isinstance(data, int) else len(data)
        if length <= 0:
            raise UsageError("cannot sample from an empty dataset")
        rank, world = distributed_info(rank, world)
        if not 0 <= rank < world:
            raise UsageError(f"rank {rank} is not in range for {world} process(es)")
        if episode_size is not None and not 1 <= episode_size <= length:
            raise UsageError(f"--episode-size {episode_size} must be between 1 and the dataset size {length}")
        self.length, self.batch_size, self.seed, self.rank, self.world = length, batch_size, seed, rank, world
        self.episode_size = episode_size or length
        self.epoch = self.start_batch = 0
        if self.batches_per_epoch == 0:
            raise UsageError(f"--batch-size {batch_size} x {world} process(es) is larger than the "
                             f"{self.episode_size} samples per epoch; lower --batch-size")

    @property
    def batches_per_epoch(self) -> int:
        return self.episode_size // (self.batch_size * self.world)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def episode(self) -> list[int]:
        """This epoch's indices over all ranks (the same list on every rank)."""
        g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
        order = torch.randperm(self.length, generator=g)[: self.episode_size]
        return order[: self.batches_per_epoch * self.batch_size * self.world].tolist()

    def __iter__(self) -> Iterator[int]:
        mine = self.episode()[self.rank::self.world]
        return iter(mine[self.start_batch * self.batch_size:])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


# -- fixed views (--augmentations K, MobileCLIP's dataset reinforcement) ---------------------------
def view_of(seed: int, epoch: int, key: str, views: int) -> int:
    """Which of a sample's ``views`` fixed augmentations it shows in ``epoch``: a uniform draw by
    (seed, epoch, sample key), the same on every rank, worker and resume."""
    return derive_seed(seed, "view", epoch, key) % views


def view_seed(seed: int, key: str, view: int) -> int:
    """The seed of view ``view`` of sample ``key``: a function of the sample alone, not of the
    epoch, so a feature store extracted once holds the very views every epoch draws from."""
    return derive_seed(seed, "augmentation", key, view)
