"""Plugin discovery, broken plugins, collisions, disabling and did-you-mean, through real
entry points and through both the API and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

import vlkd_core
from vlkd_cli.app import app
from vlkd_core.testing import check_loss

GOOD = """
    import torch
    from torch import nn
    from vlkd_core import hookimpl, LossNeeds

    class L1Distill(nn.Module):
        "Mean absolute difference to the teacher."
        needs = LossNeeds(teacher=True)
        def __init__(self, scale: float = 1.0):
            super().__init__()
            self.scale = scale
        def forward(self, s, t):
            return self.scale * (s - t.detach()).abs().mean()

    @hookimpl
    def vlkd_register_losses(register):
        register("good-l1", L1Distill)
        register("good-l1", L1Distill)   # identical re-registration: a no-op
"""
BROKEN = """
    raise RuntimeError("boom: missing dependency")
"""
COLLIDES = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_register_heads(register):
        register("fresh-head", "collide_plugin:Nothing")
        register("mlp", "collide_plugin:Nothing")   # taken by the builtin heads
"""
CONTRACT_BREAKER = """
    from torch import nn
    from vlkd_core import hookimpl

    class VectorLoss(nn.Module):
        "Forgets to reduce: returns one value per sample."
        def forward(self, s, t):
            return (s - t.detach()).pow(2).mean(dim=1)

    @hookimpl
    def vlkd_register_losses(register):
        register("vector-loss", VectorLoss)
"""

runner = CliRunner()


@pytest.fixture
def four_plugins(plugin_env):
    plugin_env("vlkd-good", "good_plugin", "good", GOOD)
    plugin_env("vlkd-broken", "broken_plugin", "broken", BROKEN)
    plugin_env("vlkd-collide", "collide_plugin", "collide", COLLIDES)
    plugin_env("vlkd-breaker", "breaker_plugin", "breaker", CONTRACT_BREAKER)
    return vlkd_core.reset_plugin_manager()


def test_good_plugin_registers_and_builds(four_plugins):
    info = four_plugins.plugins["good"]
    assert (info.status, info.distribution, info.version) == ("ok", "vlkd-good", "1.2.3")
    assert info.registered == {"losses": ["good-l1"]}
    listing = {c.name: c for c in vlkd_core.list_components("losses")}
    assert listing["good-l1"].plugin == "good"
    loss = vlkd_core.build_loss("good-l1", scale=2.0)
    s, t = torch.ones(2, 3), torch.zeros(2, 3)
    assert loss(s, t).item() == pytest.approx(2.0)
    check_loss(lambda: vlkd_core.build_loss("good-l1"))


def test_plugin_raising_on_import_is_recorded_and_others_work(four_plugins):
    info = four_plugins.plugins["broken"]
    assert info.status == "broken"
    assert info.error == "RuntimeError: boom: missing dependency"
    assert "mlp" in [c.name for c in vlkd_core.list_components("heads")]


def test_collision_names_both_distributions_and_rolls_back(four_plugins):
    info = four_plugins.plugins["collide"]
    assert info.status == "broken"
    assert "'vlkd-collide'" in info.error and "'vlkd'" in info.error and "'mlp'" in info.error
    heads = {c.name: c for c in vlkd_core.list_components("heads")}
    assert heads["mlp"].distribution == "vlkd"  # the builtin keeps its name
    assert "fresh-head" not in heads  # all-or-nothing per plugin


def test_contract_kit_rejects_a_loss_that_is_not_a_scalar(four_plugins):
    assert four_plugins.plugins["breaker"].status == "ok"  # it registers fine...
    with pytest.raises(AssertionError, match="must be a scalar"):
        check_loss(lambda: vlkd_core.build_loss("vector-loss"), name="vector-loss")  # ...but fails the kit


def test_cli_lists_every_plugin_with_status(four_plugins):
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["plugin"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["status"] == "ok" and rows["good"]["registers"] == {"losses": ["good-l1"]}
    assert rows["broken"]["status"] == "broken" and "boom" in rows["broken"]["error"]
    assert rows["collide"]["status"] == "broken" and "vlkd-collide" in rows["collide"]["error"]
    table = runner.invoke(app, ["plugins", "list"])
    assert table.exit_code == 0 and "broken" in table.stdout and "boom" in table.stdout


def test_cli_subprocess_discovers_entry_points(four_plugins, plugin_env):
    env = dict(os.environ, PYTHONPATH=str(plugin_env.site), COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "vlkd_cli", "plugins", "show", "good", "--json"],
                         capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout)["registers"] == {"losses": ["good-l1"]}
    # still works with a broken plugin around, and disabling through the environment
    env["VLKD_DISABLE_PLUGINS"] = "good,broken"
    out = subprocess.run([sys.executable, "-m", "vlkd_cli", "plugins", "list", "--json"],
                         capture_output=True, text=True, env=env, check=True)
    rows = {row["plugin"]: row for row in json.loads(out.stdout)}
    assert rows["good"]["status"] == "disabled" and rows["broken"]["status"] == "disabled"


def test_disable_plugin_option(four_plugins):
    result = runner.invoke(app, ["--disable-plugin", "good", "components", "list", "losses", "--json"])
    assert result.exit_code == 0, result.output
    assert "good-l1" not in [row["name"] for row in json.loads(result.stdout)]


def test_unknown_names_suggest_and_exit_2(four_plugins):
    with pytest.raises(vlkd_core.UnknownComponentError, match="did you mean good-l1"):
        vlkd_core.build_loss("good-l2")
    result = runner.invoke(app, ["components", "show", "head", "mpl"])
    assert result.exit_code == 2
    assert "unknown head 'mpl'" in result.output and "did you mean mlp" in result.output
    result = runner.invoke(app, ["plugins", "show", "god"])
    assert result.exit_code == 2 and "did you mean good" in result.output


def test_unknown_option_names_the_component():
    with pytest.raises(vlkd_core.UsageError, match="head 'mlp' has no option 'layerz'.*layers"):
        vlkd_core.build_head("mlp", in_dim=4, out_dim=2, layerz=3)


def test_register_module_in_process():
    class Local:
        @vlkd_core.hookimpl
        def vlkd_register_heads(self, register):
            register("local-linear", "vlkd_core.heads:LinearHead")

    pm = vlkd_core.reset_plugin_manager()
    info = pm.register_module(Local(), name="local")
    assert info.status == "ok" and info.registered == {"heads": ["local-linear"]}
    assert vlkd_core.build_head("local-linear", in_dim=3, out_dim=2).output_dim == 2
    vlkd_core.reset_plugin_manager()
