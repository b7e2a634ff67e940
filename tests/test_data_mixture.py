"""--data "a:w1,b:w2": each source's share of an epoch follows its weight, up-sampled sources
repeat evenly, down-sampled ones move their window per epoch, class ids stay apart per source,
keys name their source; per-source --data-option; a real run trains and evaluates on a mixture."""
from collections import Counter

import pytest
from PIL import Image

import vlkd_core as vlkd
from vlkd_core.datasets.mixture import MixtureDataset, Source
from vlkd_core.errors import UsageError
from vlkd_core.training import TrainConfig, train
from vlkd_core.training.sources import build_training_data


class Listed:
    """A tiny sized dataset: rows i -> {"text": "<tag> i", "label": i % classes}."""

    def __init__(self, tag: str, n: int, classes: int | None = None):
        self.tag, self.n, self.classes = tag, n, classes
        self.classnames = [f"{tag}{c}" for c in range(classes)] if classes else None

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        item = {"image": Image.new("RGB", (4, 4)), "text": f"{self.tag} {i}", "key": str(i)}
        if self.classes:
            item["label"] = i % self.classes
        return item


def test_shares_follow_the_weights_and_upsampling_repeats_evenly():
    mix = MixtureDataset([Source("a", 3.0, Listed("a", 10)), Source("b", 1.0, Listed("b", 30))])
    assert len(mix) == 40
    rows = [mix[i]["text"] for i in range(len(mix))]
    per_source = Counter(t.split()[0] for t in rows)
    assert per_source == {"a": 30, "b": 10}                 # 3:1 of the 40 rows
    assert set(Counter(t for t in rows if t.startswith("a")).values()) == {3}  # each a-row 3 times


def test_a_downsampled_source_moves_its_window_each_epoch():
    mix = MixtureDataset([Source("a", 1.0, Listed("a", 30)), Source("b", 3.0, Listed("b", 10))])
    seen = set()
    for epoch in range(3):
        mix.set_epoch(epoch)
        rows = {mix[i]["text"] for i in range(len(mix)) if mix[i]["text"].startswith("a")}
        assert len(rows) == 10 and not rows & seen           # a fresh window of a's 30 rows
        seen |= rows
    assert len(seen) == 30


def test_class_ids_stay_apart_and_keys_name_their_source():
    mix = MixtureDataset([Source("a", 1.0, Listed("a", 6, classes=3)), Source("plain", 1.0, Listed("p", 6)),
                          Source("b", 1.0, Listed("b", 6, classes=2))])
    items = [mix[i] for i in range(len(mix))]
    labels = {it["text"].split()[0]: set() for it in items}
    for it in items:
        labels[it["text"].split()[0]].add(it.get("label"))
    assert labels == {"a": {0, 1, 2}, "p": {None}, "b": {3, 4}}
    assert mix.classnames == ["a0", "a1", "a2", "b0", "b1"]
    assert {it["key"].split(":")[0] for it in items} == {"a", "plain", "b"}


def test_a_labelled_source_without_classnames_is_refused():
    class NoNames(Listed):
        def __getitem__(self, i):
            return dict(super().__getitem__(i), label=1)
    mix = MixtureDataset([Source("odd", 1.0, NoNames("o", 4))])
    with pytest.raises(UsageError, match="odd"):
        mix[0]


def test_options_go_to_their_source_and_an_unnamed_one_is_an_error(tmp_path):
    cfg = TrainConfig(data="shapes:1,shapes-colour:1", data_options={"shapes.length": 12, "shapes-colour.length": 4})
    with pytest.raises(Exception) as info:  # shapes-colour is not a dataset: did-you-mean from the registry
        build_training_data(cfg)
    assert "shapes-colour" in str(info.value)
    bad = TrainConfig(data="shapes:1,csv:1", data_options={"length": 12})
    with pytest.raises(UsageError, match="--data-option 'length'.*shapes.length"):
        build_training_data(bad)


def _imagefolder(root, classes=("cat", "dog"), per_class=8):
    for c, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (32, 32), (40 * c + 3 * i, 200 - 60 * c, 90)).save(root / "train" / name / f"{i}.png")


@pytest.mark.slow
def test_a_run_trains_and_evaluates_on_a_mixture(tmp_path):
    _imagefolder(tmp_path / "pets")
    cfg = TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                      loss="unicl", teacher="none", batch_size=16, epochs=1, warmup_steps=1, progress=False,
                      data="shapes:0.5,imagefolder:0.5",
                      data_options={"shapes.length": 48, "shapes.size": 32, "imagefolder.root": str(tmp_path / "pets")},
                      output_dir=str(tmp_path), name="run")
    summary = train(cfg)
    assert summary["steps"] == 4                              # (48 + 16) rows / 16
    assert any(k.startswith("zeroshot") for k in summary["metrics"])  # shapes' suggested evals ran


@pytest.mark.slow
def test_the_cli_names_sources_with_dashes(tmp_path):
    from typer.testing import CliRunner
    from vlkd_cli.app import app
    _imagefolder(tmp_path / "pets")
    result = CliRunner().invoke(app, [
        "train", "--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32",
        "--image-head", "none", "--loss", "unicl", "--teacher", "none", "--batch-size", "16",
        "--epochs", "1", "--eval", "none", "--no-progress", "--data", "shapes-colour:1,imagefolder:1",
        "--data-option", "shapes-colour.length=16", "--data-option", f"imagefolder.root={tmp_path / 'pets'}",
        "--output-dir", str(tmp_path), "--name", "cli"])
    assert result.exit_code == 2 and "shapes-colour" in result.output  # unknown dataset, named
    result = CliRunner().invoke(app, [
        "train", "--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32",
        "--image-head", "none", "--loss", "unicl", "--teacher", "none", "--batch-size", "16",
        "--epochs", "1", "--eval", "none", "--no-progress", "--data", "shapes:1,imagefolder:1",
        "--data-option", "shapes.length=16", "--data-option", "shapes.size=32",
        "--data-option", f"imagefolder.root={tmp_path / 'pets'}", "--output-dir", str(tmp_path), "--name", "cli"])
    assert result.exit_code == 0, result.output


def test_per_source_options_match_names_with_dashes():
    from vlkd_core.training.sources import _options_per_source
    cfg = TrainConfig(data="coco-captions:1,csv:1", data_options={"coco_captions.root": "x", "csv.path": "p.csv"})
    assert _options_per_source(cfg, ["coco-captions", "csv"]) == {"coco-captions": {"root": "x"}, "csv": {"path": "p.csv"}}
