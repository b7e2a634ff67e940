"""EpochSampler: a fresh seeded episode per epoch, split disjointly across ranks, resumable."""
from __future__ import annotations

import hashlib

import pytest
from torch.utils.data import DataLoader

from vlkd_core.datasets.sampling import EpochSampler, derive_seed
from vlkd_core.errors import UsageError


def indices(length, episode, seed=0, epoch=0, rank=0, world=1, batch=1, start=0) -> list[int]:
    sampler = EpochSampler(length, batch_size=batch, episode_size=episode, seed=seed, rank=rank, world=world)
    sampler.set_epoch(epoch, start)
    return list(sampler)


def test_episode_size_range_and_uniqueness():
    got = indices(100, 30)
    assert len(got) == 30 == len(EpochSampler(100, episode_size=30, rank=0, world=1))
    assert len(set(got)) == 30 and all(0 <= i < 100 for i in got)


def test_fresh_episode_each_epoch_and_deterministic_per_seed():
    episodes = [indices(1000, 50, epoch=e) for e in range(4)]
    assert all(set(a) != set(b) for i, a in enumerate(episodes) for b in episodes[i + 1:])
    assert indices(1000, 50, seed=3, epoch=2) == indices(1000, 50, seed=3, epoch=2)
    assert indices(1000, 50, seed=3, epoch=2) != indices(1000, 50, seed=4, epoch=2)
    # over many epochs every sample gets its turn (a subset, not a fixed prefix)
    assert len(set().union(*(indices(100, 20, epoch=e) for e in range(60)))) == 100


@pytest.mark.parametrize("world, episode, batch", [(2, 40, 4), (3, 40, 2), (4, 10, 1)])
def test_ranks_get_equal_disjoint_whole_batches_of_one_episode(world, episode, batch):
    shares = [indices(200, episode, seed=7, epoch=1, rank=r, world=world, batch=batch) for r in range(world)]
    per_rank = episode // (world * batch) * batch
    assert [len(s) for s in shares] == [per_rank] * world
    union = set().union(*shares)
    assert len(union) == per_rank * world  # pairwise disjoint
    alone = set(indices(200, episode, seed=7, epoch=1))
    assert union <= alone  # the ranks split the single-process episode (minus the remainder)


def test_resuming_mid_epoch_yields_the_remaining_batches():
    full = indices(64, None, epoch=3, batch=8, world=2, rank=1)
    assert indices(64, None, epoch=3, batch=8, world=2, rank=1, start=2) == full[16:]
    sampler = EpochSampler(64, batch_size=8, rank=1, world=2)
    sampler.set_epoch(3, 2)
    assert len(sampler) == len(full) - 16


def test_whole_dataset_when_no_episode_size_and_with_a_dataloader():
    sampler = EpochSampler(list(range(25)), batch_size=5, seed=1, rank=0, world=1)
    assert sorted(sampler) == list(range(25))
    batches = list(DataLoader(list(range(100, 125)), batch_size=5, sampler=sampler))
    assert sorted(int(x) for b in batches for x in b) == list(range(100, 125))


def test_invalid_settings_are_usage_errors():
    with pytest.raises(UsageError, match="episode-size 200 must be between 1 and the dataset size"):
        EpochSampler(100, episode_size=200, rank=0, world=1)
    with pytest.raises(UsageError, match="larger than the 3 samples per epoch"):
        EpochSampler(100, episode_size=3, rank=0, world=4)
    with pytest.raises(UsageError, match="rank 2 is not in range"):
        EpochSampler(100, episode_size=10, rank=2, world=2)
    with pytest.raises(UsageError, match="empty"):
        EpochSampler([], batch_size=1)


def test_derive_seed_is_stable_across_processes():
    assert derive_seed(1, "a", 2) == derive_seed(1, "a", 2) != derive_seed(1, "a", 3)
    expected = int.from_bytes(hashlib.sha256(b"0/ep").digest()[:8], "little") % 2**63
    assert derive_seed(0, "ep") == expected
