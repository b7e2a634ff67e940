"""--layer-decay: a tower parameter at depth d of L trains at lr * decay^(L - d); towers without a
depth map are refused by name."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vlkd_cli.app import app
from train_helpers import TINY, invoke_cli

# the toy image tower by hand: net.0/1 (stage 1), net.3/4 (stage 2), net.6 (stage 3), net.10
# (projection, the top); its linear head sits at the top too
TOY_DEPTH = {"net.0": 1, "net.1": 1, "net.3": 2, "net.4": 2, "net.6": 3, "net.10": 4}


def _groups_by_param(cfg):
    """param name -> (lr, weight decay) of the group holding it, from the engine's own grouping."""
    from vlkd_core.training.compose import compose
    from vlkd_core.training.layer_decay import depth_functions
    from vlkd_core.training.optim import param_groups
    comp = compose(cfg)
    model = comp.model
    named = {"image": list(model.image_tower.named_parameters())
             + [("head." + n, p) for n, p in model.image_head.named_parameters()],
             "text": list(model.text_tower.named_parameters())}
    groups = param_groups(named, {"image": cfg.lr, "text": cfg.lr}, 0.05,
                          depth_functions(model, {"image": cfg.image, "text": cfg.text}, cfg.layer_decay))
    names = {id(p): n for n, p in named["image"]}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def test_group_lrs_follow_depth_for_named_parameters():
    from vlkd_core.training import TrainConfig
    cfg = TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32},
                      image_head="linear", teacher="text", lr=1e-3, layer_decay=0.5)
    by_param = _groups_by_param(cfg)
    assert len(by_param) == 14  # 6 tower modules x (weight, bias) + the head's weight and bias
    for name, (lr, wd) in by_param.items():
        depth = 4 if name.startswith("head.") else TOY_DEPTH[name.rsplit(".", 1)[0]]
        assert lr == pytest.approx(1e-3 * 0.5 ** (4 - depth)), name
        assert wd == (0.0 if name.endswith("bias") or name.startswith("net.1.") or name.startswith("net.4.") else 0.05), name
    cfg.layer_decay = None
    assert {lr for lr, _ in _groups_by_param(cfg).values()} == {1e-3}


@pytest.mark.slow
def test_training_shows_the_groups_and_resumes(tmp_path):
    runner = CliRunner()
    args = ["train", *TINY, "--loss", "infonce", "--teacher", "text", "--image-head", "linear",
            "--lr", "1e-3", "--layer-decay", "0.75", "--epochs", "1", "--output-dir", str(tmp_path), "--name", "ld"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    groups = json.loads((tmp_path / "ld" / "optimizer.json").read_text())
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["image/layer04/decay"] == pytest.approx(1e-3)           # projection + head weights
    assert lrs["image/layer03/decay"] == pytest.approx(1e-3 * 0.75)    # net.6
    assert lrs["image/layer01/decay"] == pytest.approx(1e-3 * 0.75 ** 3)  # the first conv
    assert lrs["image/layer02/no_decay"] == pytest.approx(1e-3 * 0.75 ** 2)  # net.3 bias, net.4 norm
    assert sum(g["tensors"] for g in groups if g["name"].startswith("image/")) == 14
    assert lrs["other/no_decay"] == pytest.approx(1e-3)  # the loss's temperature is not a tower layer
    summary = json.loads((tmp_path / "ld" / "summary.json").read_text())
    assert summary["optimizer"] == groups
    assert "optimizer groups" in result.output and "image/layer01/decay" in result.output
    # the same groups come back on resume (the optimizer state loads into them)
    result = runner.invoke(app, [*args, "--epochs", "2", "--resume", "latest"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((tmp_path / "ld" / "summary.json").read_text())["steps"] == 16


def test_a_tower_without_depth_map_is_named(tmp_path):
    result = invoke_cli(["train", *TINY, "--loss", "infonce", "--teacher", "none", "--layer-decay", "0.75",
                      "--output-dir", str(tmp_path)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "--layer-decay" in lines[0] and "text tower toy:tiny" in lines[0], lines[0]
    assert not list(tmp_path.glob("*/checkpoints"))
