"""LossNeeds is the whole contract between a loss and the engine: a third-party loss installed
through a real entry point, with a name the core has never heard of (and an underscore), gets
labels, set_epoch calls, prototype logits from a prototype head of its own plugin, its input
widths at construction, its --loss-option, and an after-step call."""
import json

import pytest

import vlkd_core as vlkd
from typer.testing import CliRunner

NEEDY = """
    import torch
    import torch.nn.functional as F
    from torch import nn
    from vlkd_core import hookimpl
    from vlkd_core.contracts import LossNeeds

    class NeedyLoss(nn.Module):
        needs = LossNeeds(teacher=False, symmetric=True, labels=True, epochs=True,
                          prototype_head=True, after_step=True)

        def __init__(self, student_dim: int, teacher_dim: int, scale: float = 1.0):
            super().__init__()
            self.scale = scale
            self.register_buffer("widths", torch.tensor([student_dim, teacher_dim]))
            self.register_buffer("epochs", torch.full((4,), -1))      # epoch given at call k
            self.register_buffer("totals", torch.zeros((), dtype=torch.long))
            self.register_buffer("epoch_calls", torch.zeros((), dtype=torch.long))
            self.register_buffer("seen", torch.zeros(3, dtype=torch.long))  # rows, labels, width
            self.register_buffer("after_steps", torch.zeros((), dtype=torch.long))
            self.register_buffer("scale_seen", torch.zeros(()))

        def set_epoch(self, epoch, total_epochs):
            self.epochs[int(self.epoch_calls)] = epoch
            self.totals.fill_(total_epochs)
            self.epoch_calls += 1

        def forward(self, s, t, labels):
            self.seen += torch.tensor([s.shape[0], labels.shape[0], s.shape[1]])
            self.scale_seen.fill_(self.scale)
            return F.cross_entropy(s @ t.T, torch.arange(s.shape[0]))

        def after_optimizer_step(self):
            self.after_steps += 1

    class TestPrototypes(nn.Module):
        def __init__(self, in_dim: int, out_dim: int):
            super().__init__()
            self.last_layer = nn.Linear(in_dim, out_dim, bias=False)

        def forward(self, x):
            return self.last_layer(F.normalize(x, dim=-1))

    @hookimpl
    def vlkd_register_losses(register):
        register("needy_loss", NeedyLoss)

    @hookimpl
    def vlkd_register_heads(register):
        register("test-proto", TestPrototypes)
"""

TINY = ["--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32", "--image-head", "none",
        "--batch-size", "16", "--epochs", "2", "--warmup-steps", "1", "--eval", "none", "--no-progress",
        "--data-option", "size=32", "--data-option", "length=64"]


@pytest.mark.slow
def test_a_third_party_loss_receives_everything_its_needs_ask_for(tmp_path, plugin_env):
    plugin_env("vlkd-needy", "vlkd_needy", "needy", NEEDY)
    vlkd.reset_plugin_manager()
    from vlkd_cli.app import app
    result = CliRunner().invoke(app, ["train", *TINY, "--output-dir", str(tmp_path), "--name", "run",
                                      "--loss", "needy_loss", "--loss-option", "needy_loss.scale=2.5",
                                      "--teacher", "none", "--prototype-head", "test-proto",
                                      "--prototypes", "7"])
    assert result.exit_code == 0, result.output
    from vlkd_core.training.restore import load_run
    bundle = load_run(tmp_path / "run").bundle
    loss = bundle.losses["needy_loss"]
    steps = json.loads((tmp_path / "run" / "summary.json").read_text())["steps"]
    assert steps == 8                                          # 64 samples / 16, two epochs
    assert loss.widths.tolist() == [7, 7]                      # prototype logits: K wide
    assert loss.seen.tolist() == [16 * steps, 16 * steps, 7 * steps]  # labels for every row
    assert loss.epoch_calls.item() == 2 and loss.epochs[:2].tolist() == [0, 1] and loss.totals.item() == 2
    assert loss.after_steps.item() == steps
    assert loss.scale_seen.item() == 2.5                       # --loss-option reached my_loss
    assert type(bundle.proto_heads["image"]).__name__ == "TestPrototypes"


def test_a_prototype_loss_without_a_named_head_asks_for_one(tmp_path, plugin_env):
    plugin_env("vlkd-needy", "vlkd_needy", "needy", NEEDY)
    vlkd.reset_plugin_manager()
    from vlkd_cli.app import app
    result = CliRunner().invoke(app, ["train", *TINY, "--output-dir", str(tmp_path), "--name", "run",
                                      "--loss", "needy_loss", "--teacher", "none"])
    assert result.exit_code == 2
    assert "--prototype-head" in result.output and "needy_loss" in result.output
