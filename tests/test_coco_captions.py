"""coco-captions: Karpathy-split and COCO captions JSON, one caption per image per epoch in
training, all captions of an image as its positives in retrieval."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn
from typer.testing import CliRunner

import vlkd_core
from vlkd_cli.app import app
from vlkd_core.errors import DataError, UsageError
from train_helpers import TOWERS, invoke_cli

COLOURS = {"red": (230, 10, 10), "green": (10, 230, 10), "blue": (10, 10, 230), "white": (240, 240, 240)}


def _karpathy(tmp_path, n_train=8):
    """A dataset_coco.json look-alike: images under root/<filepath>/, five captions each."""
    images = []
    for i in range(n_train + 2):
        colour = list(COLOURS)[i % 4]
        split = "test" if i >= n_train else ("restval" if i == 1 else "train")
        folder = "val2014" if split != "train" else "train2014"
        (tmp_path / "img" / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 12), COLOURS[colour]).save(tmp_path / "img" / folder / f"{i}.png")
        images.append({"filepath": folder, "filename": f"{i}.png", "split": split, "imgid": i,
                       "sentences": [{"raw": f"a {colour} square number {k}", "tokens": []} for k in range(5)]})
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def test_karpathy_splits_root_and_captions(tmp_path):
    path = _karpathy(tmp_path)
    train = vlkd_core.build_dataset("coco-captions", path=str(path), root=str(tmp_path / "img"), split="train")
    test = vlkd_core.build_dataset("coco-captions", path=str(path), root=str(tmp_path / "img"), split="test")
    everything = vlkd_core.build_dataset("coco-captions", path=str(path), root=str(tmp_path / "img"))
    assert (len(train), len(test), len(everything)) == (8, 2, 10)  # train takes restval too
    sample = train[1]
    assert sample["key"] == str(tmp_path / "img" / "val2014" / "1.png")
    assert sample["captions"] == [f"a green square number {k}" for k in range(5)]
    assert sample["text"] == "a green square number 0"  # the dataset contract: text is a string
    assert sample["image"].size == (12, 12)
    from vlkd_core.testing import check_dataset
    check_dataset(train, name="coco-captions")  # the contract kit every dataset passes


def test_coco_captions_format_with_split_placeholder(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), "red").save(tmp_path / name)
    ann = {"images": [{"id": 7, "file_name": "a.png"}, {"id": 9, "file_name": "b.png"}, {"id": 3, "file_name": "c.png"}],
           "annotations": [{"image_id": 9, "id": 1, "caption": "b one"}, {"image_id": 7, "id": 2, "caption": "a one"},
                           {"image_id": 9, "id": 3, "caption": " b two "}]}
    (tmp_path / "captions_val2017.json").write_text(json.dumps(ann))
    data = vlkd_core.build_dataset("coco-captions", path=str(tmp_path / "captions_{split}2017.json"), split="val")
    assert len(data) == 2  # c.png has no caption: left out
    assert [data[i]["captions"] for i in range(2)] == [["a one"], ["b one", "b two"]]
    assert data[1]["key"] == str(tmp_path / "b.png")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(UsageError, match="option path: file not found: .*nope.json"):
        vlkd_core.build_dataset("coco-captions", path=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        vlkd_core.build_dataset("coco-captions", path=str(tmp_path / "bad.json"))
    (tmp_path / "k.json").write_text(json.dumps({"images": [{"filename": "x.png", "sentences": [{"text": "no raw"}]}]}))
    with pytest.raises(DataError, match=r"k.json: images\[0\].sentences\[0\] has no 'raw'"):
        vlkd_core.build_dataset("coco-captions", path=str(tmp_path / "k.json"))
    path = _karpathy(tmp_path)
    result = invoke_cli(["train", *TOWERS, "--data", "coco-captions", "--data-option", f"path={path}",
                      "--data-option", f"root={tmp_path / 'missing'}", "--output-dir", str(tmp_path), "--name", "r"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "option root" in lines[0] and "missing" in lines[0]


def test_training_draws_one_caption_per_image_per_epoch(tmp_path):
    from vlkd_core.training.data import TrainView
    data = vlkd_core.build_dataset("coco-captions", path=str(_karpathy(tmp_path)),
                                   root=str(tmp_path / "img"), split="train")
    view = TrainView(data, lambda image, train: torch.zeros(1), seed=3, train=True)
    seen: dict[int, list[str]] = {i: [] for i in range(len(data))}
    for epoch in range(12):
        view.epoch = epoch
        for i in range(len(data)):
            text = view[i]["text"]
            assert isinstance(text, str) and text in data[i]["captions"]
            seen[i].append(text)
    again = TrainView(data, lambda image, train: torch.zeros(1), seed=3, train=True)
    again.epoch = 5
    assert [again[i]["text"] for i in range(len(data))] == [seen[i][5] for i in range(len(data))]
    other_seed = TrainView(data, lambda image, train: torch.zeros(1), seed=4, train=True)
    other_seed.epoch = 5
    assert [other_seed[i]["text"] for i in range(len(data))] != [seen[i][5] for i in range(len(data))]
    # over 12 epochs each image's draws cover several of its 5 captions (a uniform draw misses
    # that with probability 5 * (1/5)^12)
    assert all(len(set(draws)) > 1 for draws in seen.values())


class ColourModel(nn.Module):
    """Hand-made features: an image is its mean colour, a caption the one-hot of its colour word."""

    def encode_images(self, images):
        feats = torch.stack([torch.tensor(im.convert("RGB").resize((1, 1)).getpixel((0, 0)), dtype=torch.float)
                             for im in images])
        return nn.functional.normalize(feats, dim=-1)

    def encode_texts(self, texts):
        return torch.stack([torch.tensor([float(c in t.split()) for c in ("red", "green", "blue")]) for t in texts])


def test_retrieval_counts_every_caption_of_an_image(tmp_path):
    captions = {"red": ["a red square", "red"], "green": ["a green square"], "blue": ["a red blob", "a blue square"]}
    images = []
    for colour, caps in captions.items():
        Image.new("RGB", (8, 8), COLOURS[colour]).save(tmp_path / f"{colour}.png")
        images.append({"filename": f"{colour}.png", "split": "test", "sentences": [{"raw": c} for c in caps]})
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps({"images": images}))
    evaluator = vlkd_core.build_evaluator("retrieval", dataset="coco-captions", progress=False,
                                          dataset_options={"path": str(tmp_path / "dataset_flickr8k.json")})
    metrics = evaluator.evaluate(ColourModel())
    # image->text: the blue image's first caption ("a red blob") is wrong, but "a blue square"
    # ranks first, so every image is a hit at 1. text->image: "a red blob" ranks the red image
    # above its own (blue) image: 4 of 5 captions hit at 1, all 5 at 5.
    assert metrics["retrieval/image_to_text_R@1"] == 1.0
    assert metrics["retrieval/text_to_image_R@1"] == pytest.approx(4 / 5)
    assert metrics["retrieval/text_to_image_R@5"] == 1.0
    assert metrics["retrieval/mean_recall"] == pytest.approx((5 + 4 / 5) / 6)


@pytest.mark.slow
def test_trains_evaluates_and_resumes_exactly(tmp_path):
    path = _karpathy(tmp_path)
    root = tmp_path / "img"
    job = [*TOWERS, "--data", "coco-captions", "--data-option", f"path={path}", "--data-option", f"root={root}",
           "--batch-size", "4", "--epochs", "2", "--save-every", "2", "--keep-checkpoints", "3",
           "--teacher", "none", "--loss", "infonce",
           "--eval", f"retrieval:dataset=coco-captions,dataset.path={path},dataset.root={root},progress=false",
           "--output-dir", str(tmp_path / "runs"), "--name", "full"]
    runner = CliRunner()
    result = runner.invoke(app, ["train", *job])
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = tmp_path / "runs" / "full"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and "retrieval/text_to_image_R@1" in summary["metrics"]
    # resume from the end of epoch 0: epoch 1 must draw the same captions as the full run
    copy = tmp_path / "runs" / "resumed"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / "step-0000004")
    (copy / "checkpoints" / "LATEST").write_text("step-0000002")
    job[-1] = "resumed"
    result = runner.invoke(app, ["train", *job, "--resume", "latest"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    a = load_file(run / "checkpoints" / "step-0000004" / "weights.safetensors")
    b = load_file(copy / "checkpoints" / "step-0000004" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
