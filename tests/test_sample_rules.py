"""One caption rule and one key rule: what training, evaluation and the feature store read from
a sample (datasets/captions.py::captions_of, datasets/keys.py)."""
from __future__ import annotations

import pytest
import torch

import vlkd_core as vlkd
from vlkd_core import testing
from vlkd_core.datasets.captions import captions_of, training_caption
from vlkd_core.datasets.keys import caption_entry, input_keys, sample_key
from vlkd_core.errors import DataError
from vlkd_core.evaluation.features import encode_dataset
from vlkd_core.features.sources import entries_of, units_of
from vlkd_core.training.data import TrainView, collate


@pytest.mark.parametrize("item, expected", [
    ({"text": "a", "captions": ["b", "c"]}, ["b", "c"]),   # captions win
    ({"text": "a", "captions": []}, ["a"]),                # an empty list falls back to text
    ({"text": "a"}, ["a"]),
    ({"text": ["a", "b"]}, ["a", "b"]),
    ({"image": None}, []),                                 # an image-only evaluation sample
])
def test_the_captions_of_a_sample(item, expected):
    assert captions_of(item) == expected


def test_training_draws_one_of_them_and_a_sample_without_any_is_one_line():
    drawn = {training_caption(["b", "c"], 0, epoch, 7) for epoch in range(20)}
    assert drawn == {"b", "c"}
    assert training_caption(["only"], 0, 3, 7) == training_caption("only", 0, 3, 7) == "only"
    with pytest.raises(DataError, match="sample 7 has no caption"):
        training_caption(captions_of({"image": None}), 0, 0, 7)


def keyed(n: int) -> list[dict]:
    """Two captions per sample; every other sample keyed (a list is a map-style dataset)."""
    base = vlkd.build_dataset("shapes", split="test", size=16, length=n)
    return [{"image": base[i]["image"], "captions": [f"{i} a", f"{i} b"], **({"key": f"k{i}"} if i % 2 else {})}
            for i in range(n)]


def test_training_the_store_and_evaluation_read_the_same_keys_and_captions():
    data = keyed(6)
    assert [sample_key(data[i], i) for i in range(6)] == ["0", "k1", "2", "k3", "4", "k5"]
    view = TrainView(data, lambda image, train=False: torch.zeros(3, 4, 4), seed=0, train=False)
    rows = [view[i] for i in range(6)]
    stored = list(units_of(data, 4)[0].items()) + list(units_of(data, 4)[1].items())
    assert [key for key, _ in stored] == [row["key"] for row in rows]
    assert all(row["text"] in captions_of(data[i]) for i, row in enumerate(rows))
    batch = collate(rows)
    # the store holds every caption's entry, and training looks up the entry of the one it drew
    for key, item in stored:
        assert entries_of(key, item, "text") == [caption_entry(key, c) for c in captions_of(item)]
    assert set(input_keys("text", batch.keys, batch.texts, entries=True)) <= {
        e for key, item in stored for e in entries_of(key, item, "text")}
    assert input_keys("text", batch.keys, batch.texts) == batch.texts  # the cache: the caption itself
    assert input_keys("image", batch.keys, batch.texts) == batch.keys
    evaluated = encode_dataset(testing.toy_dual_encoder(), data, batch_size=4, show_progress=False, workers=0)
    assert evaluated.texts == [c for i in range(6) for c in captions_of(data[i])]


def test_a_caption_entry_is_the_key_and_16_hex_of_the_captions_sha1():
    import hashlib
    assert caption_entry("s3", "a red circle") == "s3#" + hashlib.sha1(b"a red circle").hexdigest()[:16]
    assert caption_entry("s3", "a red circle") != caption_entry("s3", "a red circle.")
