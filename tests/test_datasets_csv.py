"""The `csv` dataset: OpenCLIP/ITRA-style CSV/TSV files, validated up front with file:line errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import vlkd_core
from vlkd_core import testing
from vlkd_core.datasets.robust import DataWarning
from vlkd_core.errors import DataError, UsageError

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def save(path: Path, colour: str, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), COLOURS[colour]).save(path, format=fmt)
    return path


def close_to(image: Image.Image, colour: str, tol: int = 12) -> bool:
    pixel = image.getpixel((6, 5))
    return all(abs(a - b) <= tol for a, b in zip(pixel, COLOURS[colour]))


@pytest.fixture
def images(tmp_path):
    save(tmp_path / "img" / "red.jpg", "red")
    save(tmp_path / "img" / "green.png", "green")
    save(tmp_path / "img" / "sub" / "blue.jpg", "blue")
    return tmp_path / "img"


def test_reads_pairs_with_quoted_captions(tmp_path, images):
    path = tmp_path / "pairs.csv"
    path.write_text('filepath,title\n'
                    'img/red.jpg,"a red, bright square"\n'
                    '\n'  # blank lines are ignored
                    'img/green.png,"a green\nsquare on two lines"\n'
                    'img/sub/blue.jpg,a blue square\n')
    ds = vlkd_core.build_dataset("csv", path=str(path))
    testing.check_dataset(ds, n=3)
    assert len(ds) == 3
    items = [ds[i] for i in range(3)]
    assert [it["text"] for it in items] == ["a red, bright square", "a green\nsquare on two lines", "a blue square"]
    assert [close_to(it["image"], c) for it, c in zip(items, ["red", "green", "blue"])] == [True] * 3
    assert all(it["image"].mode == "RGB" and "label" not in it for it in items)
    assert items[2]["key"] == str(tmp_path / "img" / "sub" / "blue.jpg")
    with pytest.raises(IndexError):
        ds[3]


def test_tsv_custom_columns_labels_and_image_root(tmp_path, images, monkeypatch):
    path = tmp_path / "meta" / "pairs.tsv"  # relative paths resolve against image_root, not here
    path.parent.mkdir()
    path.write_text("caption\tlabel\timage\nsomething red\t3\tred.jpg\nsomething blue\t1\tsub/blue.jpg\n")
    monkeypatch.chdir(path.parent)  # nothing may depend on the working directory
    ds = vlkd_core.build_dataset("csv", path=str(path), image_key="image", caption_key="caption",
                                 label_key="label", image_root=str(images))
    testing.check_dataset(ds)
    assert [ds[i]["label"] for i in range(2)] == [3, 1]
    assert close_to(ds[1]["image"], "blue") and ds[1]["text"] == "something blue"


def test_relative_paths_default_to_the_csv_folder_and_several_files(tmp_path, images, monkeypatch):
    first = tmp_path / "a.csv"
    first.write_text("filepath,title\nimg/red.jpg,red one\n")
    second = images / "b.csv"  # lives in img/: its paths are relative to img/
    second.write_text("filepath,title\ngreen.png,green one\nsub/blue.jpg,blue one\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ds = vlkd_core.build_dataset("csv", path=f"{first},{second}")
    assert [ds[i]["text"] for i in range(3)] == ["red one", "green one", "blue one"]
    assert close_to(ds[1]["image"], "green")
    assert len(vlkd_core.build_dataset("csv", path=[str(first), str(second)], length=2)) == 2


def test_separator_option_overrides_the_extension(tmp_path, images):
    path = tmp_path / "pairs.txt"
    path.write_text("filepath;title\nimg/red.jpg;red, with a comma\n")
    ds = vlkd_core.build_dataset("csv", path=str(path), separator=";")
    assert ds[0]["text"] == "red, with a comma"
    tab = tmp_path / "tabbed.csv"
    tab.write_text("filepath\ttitle\nimg/red.jpg\tred\n")
    assert vlkd_core.build_dataset("csv", path=str(tab), separator="tab")[0]["text"] == "red"
    with pytest.raises(DataError, match="looks tab-separated"):
        vlkd_core.build_dataset("csv", path=str(tab))


def test_missing_column_name_names_file_and_columns(tmp_path, images):
    path = tmp_path / "pairs.csv"
    path.write_text("path,caption\nimg/red.jpg,red\n")
    with pytest.raises(DataError) as info:
        vlkd_core.build_dataset("csv", path=str(path))
    message = str(info.value)
    assert str(path) in message and "line 1" in message and "'filepath'" in message
    assert "'path', 'caption'" in message and "image_key" in message
    with pytest.raises(DataError, match="no column 'label'"):
        vlkd_core.build_dataset("csv", path=str(path), image_key="path", caption_key="caption",
                                label_key="label")


# line 1 header, 2 good, 3 blank, 4-5 a two-line caption, 6 the bad row
PREFIX = 'filepath,title,label\nimg/red.jpg,red,0\n\nimg/green.png,"green\nsquare",1\n'


@pytest.mark.parametrize("bad_row, expected", [
    ("img/sub/blue.jpg,blue\n", "missing columns: expected 3 fields"),
    ("img/sub/blue.jpg,blue,2,extra\n", "too many fields"),
    (",a caption without image,2\n", "empty image path in column 'filepath'"),
    ("img/sub/blue.jpg,  ,2\n", "empty caption in column 'title'"),
    ("img/sub/blue.jpg,blue,two\n", "label 'two' in column 'label' is not an integer"),
])
def test_malformed_row_fails_at_construction_naming_file_and_line(tmp_path, images, bad_row, expected):
    path = tmp_path / "pairs.csv"
    path.write_text(PREFIX + bad_row + "img/red.jpg,fine,0\n")
    with pytest.raises(DataError) as info:
        vlkd_core.build_dataset("csv", path=str(path), label_key="label")
    assert str(info.value).startswith(f"{path}, line 6: ")
    assert expected in str(info.value)


def test_missing_or_empty_files(tmp_path):
    with pytest.raises(UsageError, match="file not found: .*nope.csv"):
        vlkd_core.build_dataset("csv", path=str(tmp_path / "nope.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: empty file"):
        vlkd_core.build_dataset("csv", path=str(empty))
    header_only = tmp_path / "header.csv"
    header_only.write_text("filepath,title\n")
    with pytest.raises(DataError, match="no samples in .*header.csv"):
        vlkd_core.build_dataset("csv", path=str(header_only))
    with pytest.raises(UsageError, match="has no option 'csv_img_key'"):
        vlkd_core.build_dataset("csv", path=str(header_only), csv_img_key="x")


def test_bad_images_are_skipped_with_a_warning_naming_file_and_row(tmp_path, images):
    good = (images / "red.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(good[: len(good) // 2])
    path = tmp_path / "pairs.csv"
    path.write_text("filepath,title\nimg/red.jpg,red\nimg/truncated.jpg,cut\nimg/gone.jpg,gone\n")
    ds = vlkd_core.build_dataset("csv", path=str(path))  # images are not opened up front
    assert len(ds) == 3
    with pytest.warns(DataWarning) as caught:
        items = [ds[i] for i in range(3)]
    assert items[0]["text"] == "red" and items[1] is None and items[2] is None
    assert len(ds.bad_images) == ds.bad_images.count == 2
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "truncated.jpg" in messages[0] and f"{path}, line 3" in messages[0]
    assert "gone.jpg" in messages[1] and f"{path}, line 4" in messages[1] and "file not found" in messages[1]
    strict = vlkd_core.build_dataset("csv", path=str(path), strict=True)
    assert strict[0]["text"] == "red"
    with pytest.raises(DataError, match=r"truncated\.jpg .*line 3.*unreadable image"):
        strict[1]


def test_split_fills_a_placeholder_or_only_means_train(tmp_path, images):
    (tmp_path / "train.csv").write_text("filepath,title\nimg/red.jpg,train red\n")
    (tmp_path / "test.csv").write_text("filepath,title\nimg/sub/blue.jpg,test blue\n")
    template = str(tmp_path / "{split}.csv")
    assert vlkd_core.build_dataset("csv", path=template, split="test")[0]["text"] == "test blue"
    assert vlkd_core.build_dataset("csv", path=template)[0]["text"] == "train red"
    plain = str(tmp_path / "train.csv")
    assert vlkd_core.build_dataset("csv", path=plain, split="train")[0]["text"] == "train red"
    with pytest.raises(UsageError, match=r"split 'test' requested but option path has no \{split\}"):
        vlkd_core.build_dataset("csv", path=plain, split="test")
    with pytest.raises(UsageError, match="val.csv"):
        vlkd_core.build_dataset("csv", path=template, split="val")
