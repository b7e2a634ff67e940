"""Shared bad-image handling: open_image, BadImageLog, collate_skip_none (also across workers)."""
from __future__ import annotations

import io
import warnings

import pytest
import torch
from PIL import Image, ImageFile
from torch.utils.data import DataLoader

import vlkd_core
from vlkd_core.datasets.robust import BadImageLog, DataWarning, collate_skip_none, open_image
from vlkd_core.errors import DataError


def jpeg_bytes(colour=(200, 30, 30), size=(24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_good_images_decode_to_rgb(tmp_path):
    png = tmp_path / "grey.png"
    Image.new("L", (5, 7), 128).save(png)
    image = open_image(png)
    assert image.mode == "RGB" and image.size == (5, 7) and image.getpixel((2, 2)) == (128, 128, 128)
    from_bytes = open_image(jpeg_bytes(), "x.jpg")
    assert from_bytes.size == (24, 16) and from_bytes.getpixel((3, 3))[0] > 150


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing", "empty"])
def test_bad_images_are_recorded_warned_or_raised(tmp_path, kind):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # else PIL would pad truncated files silently
    path = tmp_path / f"{kind}.jpg"
    data = {"truncated": jpeg_bytes()[:300], "garbage": b"not an image at all", "empty": b""}
    if kind in data:
        path.write_bytes(data[kind])
    log = BadImageLog()
    with pytest.warns(DataWarning, match=f"skipping unreadable image .*{kind}.jpg"):
        assert open_image(path, log=log) is None
    assert log.count == 1 and log.names == [str(path)]
    if kind == "missing":
        assert list(log) == [(str(path), "file not found")]
    with pytest.raises(DataError, match=f"{kind}.jpg: unreadable image"):
        open_image(path, strict=True)


def test_collate_skip_none_returns_batch_and_skipped_count():
    assert collate_skip_none([1, None, 2, None]) == ([1, 2], 2)
    assert collate_skip_none([None, None]) == ([], 2)
    batch, skipped = collate_skip_none([torch.ones(2), None, torch.zeros(2)], torch.stack)
    assert skipped == 1 and batch.shape == (2, 2) and batch[0].tolist() == [1.0, 1.0]
    assert collate_skip_none([None], torch.stack) == ([], 1)  # collate_fn never sees an empty list


@pytest.mark.parametrize("workers", [0, 2])
def test_skipped_count_survives_dataloader_workers(tmp_path, workers):
    """Worker processes keep their own bad_images logs; the count carried by the batches is
    the one that adds up whatever the number of workers."""
    (tmp_path / "bad.jpg").write_bytes(jpeg_bytes()[:200])
    Image.new("RGB", (8, 8), "white").save(tmp_path / "ok.png")
    rows = ["ok.png,fine %d" % i if i % 3 else "bad.jpg,broken %d" % i for i in range(12)]
    rows[5] = "missing.png,gone"
    (tmp_path / "d.csv").write_text("filepath,title\n" + "\n".join(rows) + "\n")
    ds = vlkd_core.build_dataset("csv", path=str(tmp_path / "d.csv"))
    loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate_skip_none)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        batches = list(loader)
    texts = [item["text"] for batch, _ in batches for item in batch]
    assert sum(skipped for _, skipped in batches) == 5  # rows 0, 3, 6, 9 (bad.jpg) and 5 (missing)
    assert len(texts) == 7 and all(t.startswith("fine") for t in texts)
    assert ds.bad_images.count == (5 if workers == 0 else 0)  # documented: workers' logs stay there
