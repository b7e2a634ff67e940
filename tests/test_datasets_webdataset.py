"""The `webdataset` dataset: brace-expanded shards, epoch/resampled modes, rank and worker splits,
bad samples and broken shards."""
from __future__ import annotations

import io
import tarfile
import warnings
from collections import Counter
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

import vlkd_core
from vlkd_core import testing
from vlkd_core.datasets.robust import DataWarning, collate_skip_none
from vlkd_core.errors import DataError, UsageError

FORMATS = ["jpg", "png", "webp", "jpeg"]


def image_bytes(value: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 8), (value, 255 - value, 128)).save(
        buffer, format={"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt], quality=95)
    return buffer.getvalue()


def write_shards(folder: Path, sizes: list[int], labels: bool = True) -> list[str]:
    """Shards shard-000000.tar... holding samples "caption <n>" (n counting over all shards)."""
    folder.mkdir(parents=True, exist_ok=True)
    n, texts = 0, []
    for s, size in enumerate(sizes):
        with wds.TarWriter(str(folder / f"shard-{s:06d}.tar")) as sink:
            for _ in range(size):
                fmt = FORMATS[n % len(FORMATS)]
                sample = {"__key__": f"{n:06d}", fmt: image_bytes(n * 7 % 256, fmt), "txt": f"caption {n}"}
                if labels:
                    sample["cls"] = str(n % 3)
                sink.write(sample)
                texts.append(f"caption {n}")
                n += 1
    return texts


def texts_of(items) -> list[str]:
    return [it["text"] for it in items if it is not None]


def build(path, **options):
    return vlkd_core.build_dataset("webdataset", path=str(path), **options)


@pytest.fixture
def shards(tmp_path):
    texts = write_shards(tmp_path / "wds", [4, 3, 5, 2])
    return tmp_path / "wds" / "shard-{000000..000003}.tar", texts


def test_epoch_mode_reads_every_sample_once(shards):
    pattern, texts = shards
    ds = build(pattern)
    testing.check_dataset(ds, n=5)
    items = list(ds)
    assert sorted(texts_of(items)) == sorted(texts) and len(items) == 14
    for it in items:
        n = int(it["text"].split()[1])
        assert it["label"] == n % 3 and it["key"].endswith(f"/{n:06d}") and it["key"].startswith("shard-")
        assert it["image"].mode == "RGB" and abs(it["image"].getpixel((5, 4))[0] - n * 7 % 256) <= 10


def test_shuffle_is_seeded_by_seed_and_epoch(shards):
    pattern, texts = shards
    ds = build(pattern, shuffle=8, seed=3)
    first = texts_of(ds)
    assert texts_of(ds) == first  # same epoch, same order
    ds.set_epoch(1)
    second = texts_of(ds)
    assert second != first and sorted(second) == sorted(texts)
    unshuffled = build(pattern, shuffle=0, seed=3)
    order = texts_of(unshuffled)  # shard order is still shuffled per epoch, samples within a shard are not
    runs = [int(t.split()[1]) for t in order]
    assert sum(b == a + 1 for a, b in zip(runs, runs[1:])) >= 14 - 4


def test_path_forms_and_missing_shards(tmp_path, shards):
    pattern, texts = shards
    folder = pattern.parent
    joined = f"{folder}/shard-{{000000..000001}}.tar::{folder}/shard-000003.tar"
    assert sorted(texts_of(build(joined))) == sorted(texts[:7] + texts[12:])
    listed = vlkd_core.build_dataset("webdataset", path=[str(folder / "shard-000002.tar")])
    assert sorted(texts_of(listed)) == sorted(texts[7:12])
    with pytest.raises(UsageError, match=r"shard not found: .*shard-000004.tar \(and 1 more of 6\)"):
        build(folder / "shard-{000000..000005}.tar")


def test_ranks_and_workers_split_shards_without_overlap(shards):
    pattern, texts = shards
    per_rank = [texts_of(build(pattern, rank=r, world_size=2, seed=5)) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(texts)
    for rank in range(2):  # two DataLoader workers of one rank split that rank's shards again
        loader = DataLoader(build(pattern, rank=rank, world_size=2, seed=5), batch_size=None, num_workers=2)
        assert sorted(texts_of(loader)) == sorted(per_rank[rank])
    with pytest.raises(UsageError, match="4 shard\\(s\\) cannot be split over 5 ranks"):
        build(pattern, rank=0, world_size=5)


def test_epoch_samples_gives_every_rank_the_same_count(shards, monkeypatch):
    pattern, texts = shards
    counts = []
    for rank in range(2):
        items = list(build(pattern, rank=rank, world_size=2, epoch_samples=20, shuffle=0))
        counts.append(len(items))
        # the rank's own shards, gone through again once exhausted
        assert set(texts_of(items)) == set(texts_of(build(pattern, rank=rank, world_size=2)))
    assert counts == [10, 10]
    loader = DataLoader(build(pattern, epoch_samples=12), batch_size=None, num_workers=2)
    assert len(list(loader)) == 12  # 6 per worker
    # webdataset reads the worker identity from WORKER/NUM_WORKERS when set: as if in worker 0 of 2
    monkeypatch.setenv("WORKER", "0")
    monkeypatch.setenv("NUM_WORKERS", "2")
    with pytest.raises(UsageError, match="needs a shard for every worker"):
        list(build(pattern, rank=0, world_size=3, epoch_samples=8))


def test_resampled_mode(shards):
    pattern, texts = shards
    with pytest.raises(UsageError, match="set epoch_samples"):
        build(pattern, resampled=True)
    ds = build(pattern, resampled=True, epoch_samples=30, seed=1)
    items = texts_of(ds)
    assert len(items) == 30 and set(items) <= set(texts)
    assert max(Counter(items).values()) > 1  # drawn with replacement
    assert texts_of(ds) == items  # deterministic for (seed, epoch)
    ds.set_epoch(1)
    assert texts_of(ds) != items
    other_rank = texts_of(build(pattern, resampled=True, epoch_samples=30, seed=1, rank=1, world_size=2))
    assert len(other_rank) == 15  # epoch_samples is over all ranks


def test_bad_samples_yield_none_with_a_warning_or_raise_when_strict(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    good = image_bytes(10, "jpg")
    with wds.TarWriter(str(folder / "shard-000000.tar")) as sink:
        sink.write({"__key__": "a", "jpg": good, "txt": "fine"})
        sink.write({"__key__": "b", "jpg": good[: len(good) // 2], "txt": "truncated image"})
        sink.write({"__key__": "c", "jpg": good})  # no caption
        sink.write({"__key__": "d", "json": b"{}", "txt": "no image"})
    ds = build(folder / "shard-000000.tar", shuffle=0)
    with pytest.warns(DataWarning) as caught:
        items = list(ds)
    assert [it and it["text"] for it in items] == ["fine", None, None, None]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3 and ds.bad_images.count == 3
    assert "shard-000000.tar:b.jpg" in messages[0] and "Truncated" in messages[0]
    assert "shard-000000.tar:c" in messages[1] and "no caption" in messages[1]
    assert "shard-000000.tar:d" in messages[2] and "no image member" in messages[2]
    batch, skipped = collate_skip_none(items)
    assert skipped == 3 and texts_of(batch) == ["fine"]
    with pytest.raises(DataError, match=r"shard-000000\.tar:b\.jpg: unreadable image"):
        list(build(folder / "shard-000000.tar", shuffle=0, strict=True))


def test_truncated_shard_keeps_its_readable_samples(tmp_path):
    texts = write_shards(tmp_path / "cut", [6, 3], labels=False)
    broken = tmp_path / "cut" / "shard-000000.tar"
    with tarfile.open(broken) as tar:  # cut the file inside the data of the 4th image
        member = tar.getmember("000003.jpeg")
    broken.write_bytes(broken.read_bytes()[: member.offset_data + member.size // 2])
    ds = build(tmp_path / "cut" / "shard-{000000..000001}.tar", shuffle=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = texts_of(ds)
    assert sorted(got) == sorted(texts[:3] + texts[6:])
    assert any("shard-000000.tar: unreadable shard" in str(w.message) for w in caught)
    with pytest.raises(DataError, match="shard-000000.tar: unreadable shard"):
        list(build(tmp_path / "cut" / "shard-{000000..000001}.tar", shuffle=0, strict=True))


def test_endless_modes_stop_when_no_shard_has_data(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    for i in range(2):
        (folder / f"shard-{i:06d}.tar").write_bytes(b"this is not a tar file" * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError, match="no readable samples in any of 2 shard"):
            list(build(folder / "shard-{000000..000001}.tar", resampled=True, epoch_samples=10))
        with pytest.raises(DataError, match="no readable samples"):
            list(build(folder / "shard-{000000..000001}.tar", epoch_samples=10))
        assert list(build(folder / "shard-{000000..000001}.tar")) == []  # one pass: just empty


def test_split_placeholder(tmp_path):
    train = write_shards(tmp_path / "train", [2, 2])
    write_shards(tmp_path / "test", [1])
    pattern = str(tmp_path / "{split}" / "shard-{000000..000001}.tar")
    assert sorted(texts_of(build(pattern, split="train"))) == sorted(train)
    assert texts_of(build(tmp_path / "{split}" / "shard-000000.tar", split="test")) == ["caption 0"]
    with pytest.raises(UsageError, match="no \\{split\\} placeholder"):
        build(tmp_path / "train" / "shard-000000.tar", split="test")
