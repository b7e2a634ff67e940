"""End-to-end training with tiny towers: every loss family, the feature cache, config files."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vlkd_cli.app import app
import vlkd_core
from train_helpers import SHAPES, TINY, TOWERS, decreased, losses

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

runner = CliRunner()


def train(tmp_path, name, *extra):
    result = runner.invoke(app, ["train", *TINY, "--output-dir", str(tmp_path), "--name", name, *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return tmp_path / name


@pytest.mark.parametrize("loss, extra", [
    ("infonce", ["--teacher", "none"]),                       # CLIP-style, both towers train
    ("infonce", ["--teacher", "text", "--image-head", "linear"]),   # LiT: locked text tower
    ("simreg", ["--teacher", "text"]),
    ("vicreg", ["--teacher", "text", "--lr", "5e-4"]),
    ("seed", ["--teacher", "text", "--loss-option", "seed.queue_size=96"]),
    ("compress-2q", ["--teacher", "text", "--loss-option", "compress-2q.queue_size=96"]),
    ("dino", ["--teacher", "text", "--prototypes", "32"]),
    ("protocpc", ["--teacher", "text", "--prototypes", "32"]),
    ("infonce:1.0,simreg:0.5", ["--teacher", "text"]),
])
def test_each_loss_family_trains_and_loss_decreases(tmp_path, loss, extra):
    run = train(tmp_path, "run", "--loss", loss, "--epochs", "3", *extra)
    values = losses(run)
    assert len(values) == 24
    assert decreased(values), values
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 24 and (run / "config.json").exists()
    assert any((run / "tensorboard").iterdir())


def test_locked_teacher_runs_once_per_distinct_caption(tmp_path):
    run = train(tmp_path, "cached", "--loss", "simreg", "--teacher", "text", "--epochs", "3")
    summary = json.loads((run / "summary.json").read_text())
    cache = summary["feature_cache"]["text"]
    from vlkd_core.datasets.shapes import ShapesDataset
    data = ShapesDataset(size=32, length=256)
    distinct = {data[i]["text"] for i in range(len(data))}
    assert cache["misses"] == cache["entries"] == len(distinct)  # one teacher pass per caption
    assert cache["hits"] == 3 * 256 - len(distinct)


def test_disk_cache_is_reused_by_the_next_run(tmp_path):
    cache_dir = tmp_path / "features"
    args = ["--loss", "simreg", "--teacher", "text", "--feature-cache", "disk",
            "--feature-cache-dir", str(cache_dir), "--epochs", "1"]
    train(tmp_path, "first", *args)
    second = train(tmp_path, "second", *args)
    assert len(list(cache_dir.glob("*.safetensors"))) == 1
    assert json.loads((second / "summary.json").read_text())["feature_cache"]["text"]["misses"] == 0


def test_config_file_keys_mirror_flags_and_flags_win(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('loss = "simreg"\nteacher = "text"\nbatch_size = 16\nepochs = 1\n'
                      '[data_options]\nsize = 32\nlength = 64\n')
    run = train(tmp_path, "from-file", "--config", str(config), "--batch-size", "8")
    saved = json.loads((run / "config.json").read_text())
    assert saved["loss"] == "simreg" and saved["batch_size"] == 8 and saved["data_options"]["length"] == 256
    assert json.loads((run / "summary.json").read_text())["steps"] == 2 * 256 // 8


def test_episodes_use_a_subset_per_epoch(tmp_path):
    run = train(tmp_path, "episodic", "--loss", "simreg", "--teacher", "text", "--episode-size", "64")
    assert json.loads((run / "summary.json").read_text())["steps"] == 2 * 64 // 32


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    run = train(tmp_path, "accum", "--loss", "simreg", "--teacher", "text", "--accum-steps", "2")
    assert json.loads((run / "summary.json").read_text())["steps"] == 2 * (256 // 32 // 2)


@pytest.fixture(scope="module")
def shape_files(tmp_path_factory):
    """128 shapes saved as PNG files: a CSV, webdataset shards and an image folder of them."""
    from vlkd_core.datasets.shapes import ShapesDataset
    root = tmp_path_factory.mktemp("formats")
    data = ShapesDataset(size=32, length=128, two_shapes=0.0)
    rows = ["filepath,title"]
    for i in range(len(data)):
        item = data[i]
        (root / "images").mkdir(exist_ok=True)
        item["image"].save(root / "images" / f"{i}.png")
        rows.append(f"images/{i}.png,{item['text']}")
        folder = root / "folder" / "train" / item["shape"]
        folder.mkdir(parents=True, exist_ok=True)
        item["image"].save(folder / f"{i}.png")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["data", "to-webdataset", str(root / "train.csv"), str(root / "shards"),
                                 "--maxcount", "50"])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("fmt", ["csv", "webdataset", "imagefolder"])
def test_each_data_format_trains(tmp_path, shape_files, fmt):
    options = {"csv": ["--data-option", f"path={shape_files / 'train.csv'}"],
               "webdataset": ["--data-option", f"path={shape_files}/shards/shard-{{000000..000002}}.tar",
                              "--max-steps", "12"],
               "imagefolder": ["--data-option", f"root={shape_files / 'folder'}"]}[fmt]
    run = tmp_path / fmt
    result = runner.invoke(app, ["train", *TOWERS, "--loss", "infonce", "--teacher", "none", "--data", fmt,
                                 *options, "--epochs", "3", "--batch-size", "16", "--lr", "3e-3",
                                 "--output-dir", str(tmp_path), "--name", fmt])
    assert result.exit_code == 0, result.output + repr(result.exception)
    values = losses(run)
    assert len(values) in (12, 24) and decreased(values), values


@pytest.mark.parametrize("extra", [["--precision", "bf16"], ["--precision", "fp16"],
                                   pytest.param(["--compile"], marks=pytest.mark.slow)])
def test_mixed_precision_and_compile_train(tmp_path, extra):
    run = train(tmp_path, "run", "--loss", "infonce", "--teacher", "none", "--epochs", "3", "--lr", "3e-3", *extra)
    values = losses(run)
    assert all(v == v for v in values) and decreased(values), values  # finite and learning
    assert json.loads((run / "config.json").read_text())[extra[0].lstrip("-")] == (extra[1] if len(extra) > 1 else True)


def test_default_evaluators_come_from_the_training_data_plugin(tmp_path, plugin_env):
    from vlkd_core.training.config import TrainConfig
    assert TrainConfig().eval_specs()[0].startswith("zeroshot:dataset=shapes")
    assert TrainConfig(data="fashion-mnist").eval_specs()[0].startswith("zeroshot:dataset=fashion-mnist")
    assert TrainConfig(data="csv").eval_specs() == []  # image-text pairs suggest nothing
    assert TrainConfig(eval=[]).eval_specs() == []     # --eval none
    plugin_env("tiny-shapes-data", "tiny_shapes_data", "tiny-shapes", '''
        from vlkd_core import hookimpl

        @hookimpl
        def vlkd_register_datasets(register):
            register("tiny-shapes", "vlkd_core.datasets.shapes:ShapesDataset",
                     evals=["retrieval:dataset=shapes,dataset.size=32,max_samples=32,prefix=mine"])
    ''')
    vlkd_core.reset_plugin_manager()
    at = TOWERS.index("--eval")
    towers = TOWERS[:at] + TOWERS[at + 2:]  # no --eval: the data's suggestions apply
    run = tmp_path / "suggested"
    result = runner.invoke(app, ["train", *towers, *SHAPES, "--data", "tiny-shapes", "--epochs", "1",
                                 "--output-dir", str(tmp_path), "--name", "suggested"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "mine/image_to_text_R@1" in json.loads((run / "summary.json").read_text())["metrics"]
    result = runner.invoke(app, ["eval", str(run)])
    assert result.exit_code == 0, result.output
    assert set(json.loads((run / "eval.json").read_text())["metrics"]) == {
        f"mine/{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)} | {"mine/mean_recall"}
