"""The tower flags are one declaration: `vlkd train`, `vlkd eval` and `vlkd features extract`
name and explain --image/--text, --image-pretrained/--text-pretrained and
--image-option/--text-option alike (from TrainConfig's fields), a store is extracted with the
flags a run names its teacher by, and the flags features extract had before end in one line
naming their replacement."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import typer
from safetensors import safe_open
from typer.testing import CliRunner

import vlkd_core
from features_helpers import folder_bytes, toy_weights
from vlkd_cli.app import app
from vlkd_core.datasets.keys import caption_entry
from vlkd_core.errors import UsageError
from vlkd_core.features import ExtractConfig, FeatureStore, extract
from vlkd_core.training.config import TowerConfig, TrainConfig

SHARED = ("spec", "pretrained", "options")  # the parts every tower-building command takes
COMMANDS = (["train"], ["eval"], ["features", "extract"])
DATA = ["--data", "shapes", "--data-option", "size=32", "--data-option", "length=12"]


def declared(side: str, part: str) -> tuple[str, str]:
    """(flag, help) of one tower part as TrainConfig declares it."""
    key = TowerConfig.key(side, part)
    option = next(f for f in dataclasses.fields(TrainConfig) if f.name == key).metadata["option"]
    return option.flag(key), option.help


def click_params(path: list[str]) -> dict[str, object]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt: param for param in command.params for opt in param.opts}


def cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("side", ["image", "text"])
@pytest.mark.parametrize("part", SHARED)
def test_train_eval_and_extract_take_the_declared_flag_with_the_declared_help(side, part):
    flag, text = declared(side, part)
    for path in COMMANDS:
        param = click_params(path).get(flag)
        assert param is not None, f"`vlkd {' '.join(path)}` has no {flag}"
        assert param.name == TowerConfig.key(side, part), path  # parsed as vlkd train parses it
        assert param.help.startswith(text), (path, param.help)
        shown = " ".join(CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output.split())
        assert flag in shown and text in shown, path


def test_eval_and_extract_take_no_tower_flag_train_does_not_declare():
    """No hand-made tower flag beside the declared ones (a renamed copy would show here)."""
    train = set(click_params(["train"]))
    for path in COMMANDS[1:]:
        towerish = {opt for opt in click_params(path) if opt.startswith(("--image", "--text"))}
        assert towerish == {declared(side, part)[0] for side in ("image", "text") for part in SHARED}, path
        assert towerish <= train


@pytest.mark.parametrize("old, new", [("--tower", "--text SPEC"), ("--side", "--image SPEC"),
                                      ("--tower-option", "--text-option"), ("--pretrained", "--image-pretrained")])
def test_the_old_extract_flags_name_their_replacement(tmp_path, old, new):
    result = cli("features", "extract", *DATA, old, "text", "--out", tmp_path / "s")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and old in result.stderr and new in result.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, message", [
    (["features", "extract", *DATA, "--image", "toy:tiny", "--text", "toy:tiny"], "give --image or --text, not both"),
    (["features", "extract", *DATA, "--text-option", "image_size=16"], "--text-option needs --text SPEC"),
    (["features", "extract", *DATA, "--text", "toy:tiny", "--image-pretrained", "w"], "--image-pretrained needs --image SPEC"),
    (["features", "extract", *DATA], "give --image SPEC or --text SPEC"),
    (["eval", "--image", "toy:tiny", "--text-pretrained", "w", "--eval", "knn"], "--text-pretrained needs --text SPEC"),
    (["eval", "--image", "toy:tiny", "--image-option", "image_size", "--eval", "knn"], "--image-option 'image_size' must look like key=value"),
])
def test_tower_flags_without_their_tower_are_one_line_naming_the_flag(tmp_path, args, message):
    result = cli(*args, *(["--out", tmp_path / "s"] if args[0] == "features" else []))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_extract_text_names_the_tower_as_a_run_does_and_stores_its_features(tmp_path):
    """`--text hf:BERT --text-option pooler=mean`: the store holds that tower's feature of each
    caption, writes the files the Python API writes for the same TowerConfig, and fits the
    run whose teacher is named with the same flags (and no other)."""
    from vlkd_hf.testing import tiny_bert
    spec = f"hf:{tiny_bert(tmp_path / 'bert')}"
    result = cli("features", "extract", *DATA, "--text", spec, "--text-option", "pooler=mean",
                 "--out", tmp_path / "cli", "--no-progress")
    assert result.exit_code == 0, result.output
    tower = TowerConfig("text", spec, options={"pooler": "mean"})
    extract(ExtractConfig(data="shapes", data_options={"size": 32, "length": 12}, tower=tower,
                          out=str(tmp_path / "api"), progress=False))
    assert folder_bytes(tmp_path / "cli") == folder_bytes(tmp_path / "api")
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["side"] == "text" and manifest["model"] == {"spec": spec, "pretrained": None,
                                                                "options": {"pooler": "mean"}}
    bert = vlkd_core.build_backbone(spec, modality="text", pooler="mean").eval()
    data = vlkd_core.build_dataset("shapes", split="train", size=32, length=12)
    with safe_open(str(tmp_path / "cli" / "features-000000.safetensors"), framework="pt") as f:
        for i in range(12):
            with torch.no_grad():
                alone = bert(bert.preprocess([data[i]["text"]]))[0]
            assert torch.allclose(f.get_tensor(caption_entry(str(i), data[i]["text"])), alone, atol=1e-5)
    store = FeatureStore(tmp_path / "cli")
    store.check_model(TrainConfig(text=spec, text_options={"pooler": "mean"}).tower("text"))
    with pytest.raises(UsageError, match="--text-option"):
        store.check_model(TrainConfig(text=spec, text_options={"pooler": "cls"}).tower("text"))


def test_extract_image_with_pretrained_weights_writes_what_the_api_writes(tmp_path):
    weights = toy_weights(tmp_path / "w.safetensors", "image")
    result = cli("features", "extract", *DATA, "--image", "toy:tiny", "--image-pretrained", weights,
                 "--image-option", "image_size=32", "--out", tmp_path / "cli", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "12 image features of 12 samples" in result.output
    tower = TrainConfig(image="toy:tiny", image_pretrained=weights, image_options={"image_size": 32}).tower("image")
    extract(ExtractConfig(data="shapes", data_options={"size": 32, "length": 12}, tower=tower,
                          out=str(tmp_path / "api"), progress=False))
    assert folder_bytes(tmp_path / "cli") == folder_bytes(tmp_path / "api")
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["model"]["pretrained"] == weights
