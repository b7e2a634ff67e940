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


# Option defaults as written in the design document's loss table (DESIGN.md, "Loss definitions",
# which follows the papers), not read from the implementation: a changed default fails here.
DESIGN_DEFAULTS = {
    "simreg": {}, "simreg-l1": {}, "simreg-smoothl1": {},
    "vicreg": {"sim_coeff": 25, "std_coeff": 25, "cov_coeff": 1, "eps": 1e-4},
    "barlowtwins": {"lambd": 0.0051},
    "rkd": {"distance_weight": 1.0, "angle_weight": 2.0},
    "compress-1q": {"queue_size": 65536, "temperature": 0.04},
    "compress-2q": {"queue_size": 65536, "temperature": 0.04},
    "seed": {"queue_size": 65536, "student_temp": 0.07, "teacher_temp": 1e-4},
}


@pytest.mark.parametrize("name", NAMES)
def test_user_options_and_defaults_are_the_designs(name):
    from vlkd_core.api import LOSS_WIDTHS
    declared = vlkd_core.factory_options(vlkd_core.get_component("losses", name))
    user = {k: v for k, v in declared.items() if k not in LOSS_WIDTHS}
    assert user == DESIGN_DEFAULTS[name]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def test_seed_with_default_options_computes_the_design_formula():
    """logits_s = [ŝ·t̂, ŝQᵀ]/τ_s, p_t = softmax([1, t̂Qᵀ]/τ_t), loss = −mean Σ p_t log_softmax(logits_s),
    with τ_s = 0.07 and τ_t = 1e-4 from the design table (float64, written from the formula)."""
    torch.manual_seed(0)
    s, t = torch.randn(8, 16), torch.randn(8, 16)
    loss = vlkd_core.build_loss("seed", widths={"teacher_dim": 16})
    queue = loss.queue.detach().double().clone()
    got = float(vlkd_core.loss_value(loss(s, t)))
    sh, th = _unit(s.double()), _unit(t.double())
    logits_s = torch.cat([(sh * th).sum(1, keepdim=True), sh @ queue.T], dim=1) / 0.07
    p_t = torch.softmax(torch.cat([torch.ones(8, 1, dtype=torch.float64), th @ queue.T], dim=1) / 1e-4, dim=1)
    want = float(-(p_t * torch.log_softmax(logits_s, dim=1)).sum(1).mean())
    assert got == pytest.approx(want, rel=1e-4)


def test_compress_1q_with_default_options_computes_the_design_formula():
    """KL(p_t ‖ p_s), batch mean, p_t = softmax(t̂Q_tᵀ/T), p_s = softmax(ŝQ_tᵀ/T), T = 0.04."""
    torch.manual_seed(1)
    s, t = torch.randn(8, 16), torch.randn(8, 16)
    loss = vlkd_core.build_loss("compress-1q", widths={"student_dim": 16, "teacher_dim": 16})
    queue = loss.queue.detach().double().clone()
    got = float(vlkd_core.loss_value(loss(s, t)))
    log_p_t = torch.log_softmax(_unit(t.double()) @ queue.T / 0.04, dim=1)
    log_p_s = torch.log_softmax(_unit(s.double()) @ queue.T / 0.04, dim=1)
    want = float((log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean())
    assert got == pytest.approx(want, rel=1e-4)


def test_cli_shows_formula_paper_and_options():
    import json
    import re

    from typer.testing import CliRunner

    from vlkd_cli.app import app
    result = CliRunner().invoke(app, ["components", "show", "loss", "seed", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert "arXiv:2101.04731" in info["paper"] and "log_softmax" in info["formula"]
    assert info["options"] == DESIGN_DEFAULTS["seed"] and info["set_by_engine"] == ["teacher_dim"]
    table = CliRunner().invoke(app, ["components", "show", "loss", "seed"], terminal_width=200)
    assert re.search(r"\[queue_size, \w+\]", table.output)  # docstring brackets are text, not markup
