"""WiSE-FT: a run saves its starting weights; `vlkd eval RUN --wise-ft A` and `--eval-wise-ft A`
evaluate (1 - A) * start + A * trained."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from vlkd_cli.app import app
from train_helpers import TOWERS, invoke_cli

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

runner = CliRunner()
EVAL = "retrieval:dataset=shapes,dataset.size=32,dataset.length=48,progress=false"
# both towers train, the image tower with a linear head; 2 epochs of 2 steps
JOB = [*TOWERS, "--data-option", "size=32", "--data-option", "length=64", "--teacher", "none",
       "--image-head", "linear", "--loss", "infonce", "--lr", "1e-2"]


def train(tmp_path, name, *extra):
    result = runner.invoke(app, ["train", *JOB, "--output-dir", str(tmp_path), "--name", name, *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return tmp_path / name


def _final_weights(run):
    latest = (run / "checkpoints" / "LATEST").read_text()
    return load_file(run / "checkpoints" / latest / "weights.safetensors")


def test_start_weights_are_the_weights_before_the_first_step(tmp_path):
    from vlkd_core.training import TrainConfig
    from vlkd_core.training.compose import compose
    from vlkd_core.training.runtime import seed_everything
    run = train(tmp_path, "run")
    start = load_file(run / "start" / "weights.safetensors")
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    seed_everything(cfg.seed)  # what training does before composing
    initial = compose(cfg).model.state_dict()
    assert {k.split(".")[0] for k in start} == {"image_tower", "text_tower", "image_head"}
    assert all(torch.equal(start[k], initial[k]) for k in start)
    trained = _final_weights(run)
    assert not torch.equal(start["image_head.proj.weight"], trained["model.image_head.proj.weight"])


def test_locked_towers_are_not_saved(tmp_path):
    run = train(tmp_path, "lit", "--teacher", "text", "--epochs", "1")
    keys = load_file(run / "start" / "weights.safetensors").keys()
    assert {k.split(".")[0] for k in keys} == {"image_tower", "image_head"}


def test_interpolated_weights_and_exact_restore(tmp_path):
    from vlkd_core.training.restore import load_run
    from vlkd_core.training.wiseft import interpolated, load_start_weights
    run = train(tmp_path, "run")
    model = load_run(run).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    start = load_start_weights(run)
    with interpolated(model, start, 0.3):
        inside = model.state_dict()
        for key, theta0 in start.items():
            assert torch.allclose(inside[key], 0.7 * theta0 + 0.3 * before[key], atol=1e-7), key
        untouched = [k for k in before if k not in start]
        assert all(torch.equal(inside[k], before[k]) for k in untouched)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)  # training can go on bit for bit


def test_eval_wise_ft_scores_the_interpolation(tmp_path):
    from vlkd_core.training.evals import build_evaluators, run_evaluators
    from vlkd_core.training.restore import load_run
    run = train(tmp_path, "run")
    result = invoke_cli(["eval", str(run), "--wise-ft", "0.5", "--eval", EVAL])
    assert result.returncode == 0, result.stderr
    record = json.loads((run / "eval-wise-ft-0.5.json").read_text())
    assert record["wise_ft"] == 0.5
    # the same evaluator on weights mixed here by hand
    model = load_run(run).model
    trained, start = _final_weights(run), load_file(run / "start" / "weights.safetensors")
    mixed = {k: 0.5 * v + 0.5 * trained["model." + k] for k, v in start.items()}
    model.load_state_dict(mixed, strict=False)
    expected = run_evaluators(build_evaluators([EVAL]), model)
    assert record["metrics"] == pytest.approx(expected, abs=1e-6)
    plain = run_evaluators(build_evaluators([EVAL]), load_run(run).model)
    assert plain != pytest.approx(expected, abs=1e-6)  # the interpolation is not the trained model


def test_eval_wise_ft_during_training(tmp_path):
    with_wise = train(tmp_path, "with", "--eval", EVAL, "--eval-every", "1", "--eval-wise-ft", "0.5")
    without = train(tmp_path, "without", "--eval", EVAL, "--eval-every", "1")
    metrics = json.loads((with_wise / "summary.json").read_text())["metrics"]
    plain = {k: v for k, v in metrics.items() if not k.startswith("wise-ft/")}
    assert plain == json.loads((without / "summary.json").read_text())["metrics"]
    # the mid-run WiSE-FT evaluation put the weights back: training is unchanged
    a, b = _final_weights(with_wise), _final_weights(without)
    assert all(torch.equal(a[k], b[k]) for k in a)
    result = invoke_cli(["eval", str(with_wise), "--wise-ft", "0.5", "--eval", EVAL])
    assert result.returncode == 0, result.stderr
    offline = json.loads((with_wise / "eval-wise-ft-0.5.json").read_text())["metrics"]
    assert {f"wise-ft/{k}": v for k, v in offline.items()} == pytest.approx(
        {k: v for k, v in metrics.items() if k.startswith("wise-ft/")}, abs=1e-6)


def _one_line_error(result, *words):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_bad_alpha_and_missing_start_weights(tmp_path):  # --eval-wise-ft range: test_option_validation
    run = train(tmp_path, "run", "--epochs", "1")
    _one_line_error(invoke_cli(["eval", str(run), "--wise-ft", "-0.1", "--eval", EVAL]), "--wise-ft")
    (run / "start" / "weights.safetensors").unlink()
    _one_line_error(invoke_cli(["eval", str(run), "--wise-ft", "0.5", "--eval", EVAL]), "--wise-ft", "starting weights")
