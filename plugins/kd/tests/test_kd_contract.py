"""Every loss of the plugin passes the contract kit and documents itself."""
from __future__ import annotations

import inspect

import pytest
import torch

import vlkd_core
from vlkd_core.testing import check_loss

torch.set_num_threads(1)
NAMES = ["simreg", "simreg-l1", "simreg-smoothl1", "vicreg", "barlowtwins", "rkd",
         "compress-1q", "compress-2q", "seed"]


def test_plugin_registers_exactly_its_losses():
    mine = sorted(c.name for c in vlkd_core.list_components("losses") if c.plugin == "kd")
    assert mine == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_contract_kit(name):
    example = vlkd_core.get_component("losses", name).metadata.get("example", {})
    check_loss(name, options=example)  # built by name: the kit passes its width as the engine does


@pytest.mark.parametrize("name", NAMES)
def test_documented_with_formula_paper_and_needs(name):
    cls = vlkd_core.get_component("losses", name).resolve()
    assert cls.formula and "arXiv:" in cls.paper and inspect.getdoc(cls)
    assert cls.needs.teacher and not cls.needs.symmetric


def test_default_queue_size_follows_the_papers():
    for name in ("seed", "compress-1q", "compress-2q"):
        assert vlkd_core.factory_options(vlkd_core.get_component("losses", name))["queue_size"] == 65536


def test_cli_shows_formula_paper_and_options():
    from typer.testing import CliRunner

    from vlkd_cli.app import app
    result = CliRunner().invoke(app, ["components", "show", "loss", "seed", "--json"])
    assert result.exit_code == 0, result.output
    import json
    info = json.loads(result.output)
    assert "arXiv:2101.04731" in info["paper"] and "log_softmax" in info["formula"]
    assert info["options"] == {"queue_size": 65536, "student_temp": 0.07, "teacher_temp": 1e-4}
    table = CliRunner().invoke(app, ["components", "show", "loss", "seed"], terminal_width=200)
    assert "[queue_size, D]" in table.output  # docstring brackets are text, not rich markup
