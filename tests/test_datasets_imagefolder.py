"""The `imagefolder` dataset: class folders, prompt-template captions, split subfolders."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import vlkd_core
from vlkd_core import testing
from vlkd_core.datasets.robust import DataWarning
from vlkd_core.errors import UsageError
from vlkd_core.evaluation.prompts import load_templates

COLOURS = {"golden_retriever": (200, 160, 40), "cat": (90, 90, 90), "zebra_fish": (30, 90, 200)}


def make_split(root: Path, counts: dict[str, int]) -> None:
    for folder, n in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            fmt = "png" if i % 2 else "jpg"
            Image.new("RGB", (9, 9), COLOURS[folder]).save(root / folder / f"{i}.{fmt}")
    (root / "cat" / "notes.txt").write_text("not an image")  # ignored: not an image suffix


@pytest.fixture
def root(tmp_path):
    make_split(tmp_path / "train", {"golden_retriever": 3, "cat": 2, "zebra_fish": 1})
    make_split(tmp_path / "test", {"golden_retriever": 1, "cat": 1, "zebra_fish": 2})
    return tmp_path


def test_class_folders_give_classnames_labels_and_captions(root):
    ds = vlkd_core.build_dataset("imagefolder", root=str(root))
    testing.check_dataset(ds, n=6)
    assert ds.classnames == ["cat", "golden retriever", "zebra fish"]  # sorted folders, _ -> space
    assert ds.templates == ["a photo of a {}."]
    items = [ds[i] for i in range(len(ds))]
    assert len(items) == 6
    assert [it["label"] for it in items] == [0, 0, 1, 1, 1, 2]
    for it in items:
        assert it["text"] == f"a photo of a {ds.classnames[it['label']]}."
        folder = it["key"].split("/")[1]
        assert it["key"].startswith("train/") and ds.classnames.index(folder.replace("_", " ")) == it["label"]
        assert abs(it["image"].getpixel((4, 4))[2] - COLOURS[folder][2]) <= 12


def test_split_selects_subfolder_or_uses_a_flat_root(root, tmp_path):
    test = vlkd_core.build_dataset("imagefolder", root=str(root), split="test")
    assert len(test) == 4 and [test[i]["label"] for i in range(4)] == [0, 1, 2, 2]
    flat = tmp_path / "flat"
    make_split(flat, {"cat": 1, "zebra_fish": 1})
    ds = vlkd_core.build_dataset("imagefolder", root=str(flat), split="train")  # no split folders
    assert ds.classnames == ["cat", "zebra fish"] and len(ds) == 2
    with pytest.raises(UsageError, match="no split folder 'val' in .*; it has test, train"):
        vlkd_core.build_dataset("imagefolder", root=str(root), split="val")
    with pytest.raises(UsageError, match="does not exist"):
        vlkd_core.build_dataset("imagefolder", root=str(tmp_path / "nowhere"))


def test_templates_as_list_or_shipped_set_and_caption_modes(root):
    first = vlkd_core.build_dataset("imagefolder", root=str(root), caption="first",
                                    templates=["itap of a {}.", "a drawing of a {}."])
    assert [first[i]["text"] for i in (0, 5)] == ["itap of a cat.", "itap of a zebra fish."]
    mixed = vlkd_core.build_dataset("imagefolder", root=str(root), templates=["itap of a {}.", "a drawing of a {}."],
                                    seed=1)
    texts = [mixed[i]["text"] for i in range(len(mixed))]
    assert set(texts) <= {t.format(c) for t in ("itap of a {}.", "a drawing of a {}.") for c in mixed.classnames}
    assert {t.split(" of a ")[0] for t in texts} == {"itap", "a drawing"}  # random mode mixes templates
    assert texts == [mixed[i]["text"] for i in range(len(mixed))]  # ... reproducibly
    shipped = load_templates("cifar10")
    named = vlkd_core.build_dataset("imagefolder", root=str(root), templates="cifar10")
    assert named.templates == shipped
    assert all(named[i]["text"] in {t.replace("{}", named.classnames[named[i]["label"]]) for t in shipped}
               for i in range(len(named)))


def test_classnames_override_must_match_the_folders(root):
    ds = vlkd_core.build_dataset("imagefolder", root=str(root), classnames=["kitty", "dog", "fish"])
    assert ds[0]["text"] == "a photo of a kitty."
    with pytest.raises(UsageError, match="classnames has 2 names but .* has 3 class folders"):
        vlkd_core.build_dataset("imagefolder", root=str(root), classnames=["a", "b"])


def test_unreadable_image_is_skipped(root):
    (root / "train" / "cat" / "0.jpg").write_bytes(b"\xff\xd8\xff garbage")
    ds = vlkd_core.build_dataset("imagefolder", root=str(root))
    with pytest.warns(DataWarning, match=r"cat/0\.jpg"):
        assert ds[0] is None
    assert ds[1]["label"] == 0 and ds.bad_images.count == 1
