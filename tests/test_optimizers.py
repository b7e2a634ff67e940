"""Optimizers and schedules are components: `--optimizer NAME --optimizer-option k=v` and
`--scheduler NAME --scheduler-option k=v` build them from the registry over the engine's
parameter groups, the defaults are exactly the AdamW + warm-up/cosine vlkd always trained with,
and a bad name or option is one line naming the flag."""
from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from train_helpers import TINY
from vlkd_cli.app import app
from vlkd_core.training import TrainConfig
from vlkd_core.training.optim import build_optimizer, build_scheduler, param_groups

runner = CliRunner()


def _model_and_groups():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 2))
    return model, param_groups({"other": list(model.named_parameters())}, {"other": 1e-2}, 0.05)


def _train(model, optimizer, scheduler, steps: int) -> list[float]:
    lrs = []
    for step in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        gen = torch.Generator().manual_seed(step)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()
        scheduler.step()
    return lrs


def test_the_defaults_are_the_adamw_and_warmup_cosine_of_before():
    """What build_optimizer / warmup_cosine did before the registries, written out."""
    cfg = TrainConfig()
    model, groups = _model_and_groups()
    optimizer = build_optimizer(cfg.optimizer, cfg.optimizer_options, groups)
    lrs = _train(model, optimizer, build_scheduler(cfg.scheduler, cfg.scheduler_options, optimizer, 3, 12), 12)
    old_model, old_groups = _model_and_groups()
    old = torch.optim.AdamW(old_groups, betas=(0.9, 0.98), eps=1e-6, fused=True)

    def factor(step: int) -> float:
        return (step + 1) / 3 if step < 3 else 0.5 * (1 + math.cos(math.pi * min(1.0, (step - 3) / 9)))
    old_lrs = _train(old_model, old, torch.optim.lr_scheduler.LambdaLR(old, factor), 12)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["fused"]
    assert lrs == old_lrs
    for a, b in zip(model.parameters(), old_model.parameters()):
        assert torch.equal(a, b)


# warm-up over 4 of 8 steps; the decay reaches its end value as the run ends (after step 8)
@pytest.mark.parametrize("name, options, expected", [
    ("constant", {}, [1.0, 1.0, 1.0, 1.0]),
    ("linear", {}, [1.0, 0.75, 0.5, 0.25]),
    ("linear", {"final_lr_ratio": 0.2}, [1.0, 0.8, 0.6, 0.4]),
    ("warmup-cosine", {}, [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
    ("warmup-cosine", {"final_lr_ratio": 0.5}, [1.0, 0.5 + 0.25 * (1 + math.cos(math.pi / 4)), 0.75,
                                                 0.5 + 0.25 * (1 + math.cos(3 * math.pi / 4))]),
])
def test_schedules(name, options, expected):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(name, options, optimizer, warmup_steps=4, total_steps=8)
    lrs = _train(torch.nn.Linear(1, 1), optimizer, scheduler, 8)
    # a linear warm-up over 4 of 8 steps, then the decay, which reaches its end as the run ends
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, *expected], abs=1e-12)


@pytest.mark.slow
def test_optimizer_and_schedule_of_a_run_come_from_their_flags(tmp_path):
    result = runner.invoke(app, ["train", *TINY, "--loss", "infonce", "--teacher", "none", "--max-steps", "4",
                                 "--warmup-steps", "1", "--lr", "0.05", "--optimizer", "sgd",
                                 "--optimizer-option", "momentum=0.5", "--optimizer-option", "nesterov=true",
                                 "--scheduler", "constant", "--output-dir", str(tmp_path), "--name", "run"])
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-0000004" / "training.pt", weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert {(g["momentum"], g["nesterov"]) for g in groups} == {(0.5, True)}
    assert {g["lr"] for g in groups} == {0.05}                       # constant after the warm-up
    assert all("momentum_buffer" in s for s in state["optimizer"]["state"].values())
    assert state["scheduler"]["last_epoch"] == 4


@pytest.mark.parametrize("flags, message", [
    (["--optimizer", "adamx"], "unknown optimizer 'adamx'; did you mean adamw?"),
    (["--optimizer", "sgd", "--optimizer-option", "nesterov=maybe"],
     "optimizer 'sgd': option nesterov must be true or false, not 'maybe'"),
    (["--optimizer-option", "betas=[0.9]"], "optimizer 'adamw': option betas must be"),
    (["--optimizer-option", "beta=0.9"], "optimizer 'adamw' has no option 'beta'; valid options: betas, eps"),
    (["--optimizer-option", "lr=0.1"], "--optimizer-option lr: optimizer 'adamw' gets lr from --lr"),
    (["--scheduler", "cosine"], "unknown scheduler 'cosine'; did you mean warmup-cosine?"),
    (["--scheduler-option", "warmup_steps=3"], "scheduler 'warmup-cosine' gets warmup_steps from --warmup-steps"),
    (["--optimizer", "lamb", "--optimizer-in-backward", "--grad-clip", "0"],
     "--optimizer-in-backward runs one optimizer per parameter: optimizer 'lamb' does not declare per_parameter"),
])
def test_a_bad_optimizer_or_schedule_is_one_line_before_any_work(tmp_path, flags, message):
    result = runner.invoke(app, ["train", *TINY, "--loss", "infonce", "--teacher", "none", *flags,
                                 "--output-dir", str(tmp_path), "--name", "run"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("recipe ")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "run").exists()
