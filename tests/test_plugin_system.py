"""Plugin discovery, broken plugins, collisions, disabling and did-you-mean, through real
entry points and through both the API and the CLI."""
from __future__ import annotations

import json
import os
import re
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
            register("local-linear", "vlkd_core._model.heads:LinearHead")

    pm = vlkd_core.reset_plugin_manager()
    info = pm.register_module(Local(), name="local")
    assert info.status == "ok" and info.registered == {"heads": ["local-linear"]}
    assert vlkd_core.build_head("local-linear", in_dim=3, out_dim=2).output_dim == 2
    vlkd_core.reset_plugin_manager()


# --- typed registration metadata ------------------------------------------------------------

TYPO = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_register_heads(register):
        register("typo-head", "vlkd_core._model.heads:LinearHead", description="registered first")

    @hookimpl
    def vlkd_register_backbones(register):
        register("typo-family", "vlkd_core._model.toy:build_toy_backbone", models=["tiny"],
                 model_pattern=["hub:*"])   # model_patterns, misspelt
"""
BARE_STRING = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_register_backbones(register):
        register("glob-family", "vlkd_core._model.toy:build_toy_backbone", model_patterns="hub:*")
"""
TYPED = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_register_backbones(register):
        register("typed-family", "vlkd_core._model.toy:build_toy_backbone", models=["tiny"],
                 model_patterns=["hub:*"], example={"model": "tiny"}, description="typed")
"""


@pytest.fixture
def metadata_plugins(plugin_env):
    plugin_env("vlkd-typo", "typo_plugin", "typo", TYPO)
    plugin_env("vlkd-bare", "bare_plugin", "bare", BARE_STRING)
    plugin_env("vlkd-typed", "typed_plugin", "typed", TYPED)
    plugin_env("vlkd-good", "good_plugin", "good", GOOD)
    return vlkd_core.reset_plugin_manager()


def test_unknown_metadata_key_breaks_the_plugin_with_a_one_line_message(metadata_plugins):
    info = metadata_plugins.plugins["typo"]
    assert info.status == "broken"
    assert info.error.startswith("plugin 'typo', backbone 'typo-family': unknown metadata "
                                 "'model_pattern'; did you mean model_patterns?"), info.error
    assert "\n" not in info.error
    # all-or-nothing: the head it registered before the bad call is gone, other plugins work
    assert "typo-head" not in [c.name for c in vlkd_core.list_components("heads")]
    assert "typo-family" not in [c.name for c in vlkd_core.list_components("backbones")]
    assert metadata_plugins.plugins["good"].status == "ok"
    assert vlkd_core.build_loss("good-l1") is not None


def test_metadata_of_the_wrong_shape_breaks_the_plugin(metadata_plugins):
    info = metadata_plugins.plugins["bare"]
    assert info.status == "broken"
    assert info.error == ("plugin 'bare', backbone 'glob-family': metadata 'model_patterns' must be "
                          "a list of str, not str")


def test_cli_lists_the_plugin_broken_by_a_metadata_typo(metadata_plugins):
    listed = runner.invoke(app, ["plugins", "list", "--json"])
    rows = {row["plugin"]: row for row in json.loads(listed.stdout)}
    assert rows["typo"]["status"] == "broken" and rows["typo"]["registers"] == {}
    assert "'model_pattern'" in rows["typo"]["error"]
    table = runner.invoke(app, ["plugins", "list"], terminal_width=250)
    assert table.exit_code == 0
    compact = re.sub(r"[\s│]", "", table.stdout)  # the status cell may wrap over several lines
    assert "broken" in compact and "unknownmetadata'model_pattern';didyoumeanmodel_patterns?" in compact


def test_metadata_is_typed_and_used(metadata_plugins):
    comp = vlkd_core.get_component("backbones", "typed-family")
    assert comp.info.model_patterns == ("hub:*",) and comp.info.description == "typed"
    assert comp.accepts_model("hub:org/repo") and comp.accepts_model("tiny")
    assert not comp.accepts_model("small")
    assert dict(comp.metadata) == {"description": "typed", "models": ["tiny"],
                                   "model_patterns": ("hub:*",), "example": {"model": "tiny"}}
    with pytest.raises(TypeError):
        comp.metadata["description"] = "changed"  # a read-only view


# --- kinds declared once --------------------------------------------------------------------

def test_kinds_are_declared_once_and_everything_follows():
    from vlkd_cli.plugins_cmd import KIND_CHOICES, template_dir
    from vlkd_core import hookspecs
    from vlkd_core._host.kinds import KIND_TABLE, KINDS, SINGULAR
    from vlkd_core._host.registry import normalize_kind
    pm = vlkd_core.reset_plugin_manager(entry_points=False)
    spec_hooks = {name for name in vars(hookspecs)
                  if name.startswith("vlkd_register_") and pm.pm.parse_hookspec_opts(hookspecs, name)}
    assert spec_hooks == {kind.hook for kind in KIND_TABLE}
    assert tuple(pm.registries) == KINDS
    assert KIND_CHOICES == list(SINGULAR.values())
    template = json.loads((template_dir() / "cookiecutter.json").read_text())
    assert sorted(template["kind"]) == sorted(KIND_CHOICES)  # `plugins new --kind` renders each
    for kind in KIND_TABLE:
        assert normalize_kind(kind.singular) == normalize_kind(kind.plural) == kind.plural
        message = str(vlkd_core.UnknownComponentError(kind.singular, "zzz", []))
        assert message == f"unknown {kind.singular} 'zzz' (see `vlkd components list {kind.plural}`)"
        listed = runner.invoke(app, ["components", "list", kind.singular, "--json"])
        assert listed.exit_code == 0, listed.output
        assert {row["kind"] for row in json.loads(listed.stdout)} <= {kind.plural}
    vlkd_core.reset_plugin_manager()


# --- hooks found through pluggy's public API --------------------------------------------------

LIFECYCLE = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_on_step_end(run, step, metrics):
        pass

    @hookimpl
    def vlkd_on_checkpoint(run, path):
        pass

    @hookimpl
    def vlkd_register_heads(register):
        register("lifecycle-head", "vlkd_core._model.heads:LinearHead")
"""
HOOK_TYPO = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_on_step_ends(run, step, metrics):   # vlkd_on_step_end, misspelt: never called
        pass

    @hookimpl(optionalhook=True)
    def vlkd_on_future_event(run):               # a newer vlkd's hook, declared optional
        pass
"""


def test_plugin_with_lifecycle_hooks_is_listed_with_them(plugin_env):
    plugin_env("vlkd-lifecycle", "lifecycle_plugin", "lifecycle", LIFECYCLE)
    plugin_env("vlkd-hook-typo", "hook_typo_plugin", "hook-typo", HOOK_TYPO)
    pm = vlkd_core.reset_plugin_manager()
    info = pm.plugins["lifecycle"]
    assert info.status == "ok"
    assert info.registered == {"heads": ["lifecycle-head"], "hooks": ["on_checkpoint", "on_step_end"]}
    callers = {impl.plugin_name for impl in pm.hook.vlkd_on_checkpoint.get_hookimpls()}
    assert "lifecycle" in callers
    typo = pm.plugins["hook-typo"]
    assert typo.status == "broken"
    assert typo.error.startswith("plugin 'hook-typo' implements unknown hook 'vlkd_on_step_ends'; "
                                 "did you mean vlkd_on_step_end"), typo.error
    result = runner.invoke(app, ["plugins", "show", "lifecycle", "--json"])
    assert json.loads(result.stdout)["registers"]["hooks"] == ["on_checkpoint", "on_step_end"]


def test_disabled_plugin_still_names_what_it_would_provide(plugin_env):
    plugin_env("vlkd-lifecycle", "lifecycle_plugin", "lifecycle", LIFECYCLE)
    vlkd_core.reset_plugin_manager(disable=["lifecycle"])
    with pytest.raises(vlkd_core.UnknownComponentError,
                       match="provided by plugin lifecycle, which is disabled"):
        vlkd_core.build_head("lifecycle-head", in_dim=2, out_dim=2)
    with pytest.raises(vlkd_core.UnknownComponentError, match="did you mean mlp"):
        vlkd_core.build_head("mpl", in_dim=2, out_dim=2)


# --- registration goes through pluggy: ordering options and wrappers work, attribution stays ---

def _claimer(name: str, factory: str, opts: str = "") -> str:
    """A plugin registering the head 'shared-head' (and noting that it ran in $VLKD_TEST_ORDER)."""
    return f"""
    import os
    from vlkd_core import hookimpl

    @hookimpl({opts})
    def vlkd_register_heads(register):
        with open(os.environ["VLKD_TEST_ORDER"], "a") as fh:
            fh.write("{name}\\n")
        register("shared-head", "{factory}")
"""


@pytest.mark.parametrize("first", ["alpha", "beta"])
def test_tryfirst_decides_which_plugin_keeps_a_contested_name(plugin_env, tmp_path, monkeypatch, first):
    monkeypatch.setenv("VLKD_TEST_ORDER", str(tmp_path / "order"))
    for name, factory in (("alpha", "vlkd_core._model.heads:LinearHead"), ("beta", "vlkd_core._model.heads:MLPHead")):
        module = f"{name}_{first}_first_plugin"  # a module of its own per case: imports are cached
        plugin_env(f"vlkd-{name}", module, name, _claimer(name, factory, "tryfirst=True" if name == first else ""))
    pm = vlkd_core.reset_plugin_manager()
    second = "beta" if first == "alpha" else "alpha"
    assert (tmp_path / "order").read_text().split() == [first, second]  # pluggy's order, not discovery's
    assert vlkd_core.get_component("heads", "shared-head").plugin == first
    assert pm.plugins[first].registered == {"heads": ["shared-head"]}
    loser = pm.plugins[second]
    assert loser.status == "broken" and f"'vlkd-{second}'" in loser.error and f"'vlkd-{first}'" in loser.error


WRAPPER = """
    import os
    from vlkd_core import hookimpl

    @hookimpl(hookwrapper=True)
    def vlkd_register_heads(register):
        register("before-head", "vlkd_core._model.heads:LinearHead")   # before every plain implementation
        yield
        with open(os.environ["VLKD_TEST_ORDER"], "a") as fh:
            fh.write("wrapper-after\\n")
        register("after-head", "vlkd_core._model.heads:MLPHead")       # after all of them
"""
RAISES_IN_HOOK = """
    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_register_losses(register):
        register("half-registered", "vlkd_core._model.heads:LinearHead")
        raise ValueError("registration failed halfway")
"""
RAISING_WRAPPER = """
    from vlkd_core import hookimpl

    @hookimpl(wrapper=True)
    def vlkd_register_heads(register):
        register("doomed-head", "vlkd_core._model.heads:LinearHead")
        yield
        raise RuntimeError("wrapper teardown failed")
"""


def test_wrappers_wrap_the_registration_and_a_raising_plugin_fails_alone(plugin_env, tmp_path, monkeypatch):
    monkeypatch.setenv("VLKD_TEST_ORDER", str(tmp_path / "order"))
    plugin_env("vlkd-wrapping", "wrapping_plugin", "wrapping", WRAPPER)
    plugin_env("vlkd-alpha", "alpha_plugin", "alpha", _claimer("alpha", "vlkd_core._model.heads:LinearHead"))
    plugin_env("vlkd-raises", "raises_plugin", "raises", RAISES_IN_HOOK)
    plugin_env("vlkd-bad-wrapper", "bad_wrapper_plugin", "bad-wrapper", RAISING_WRAPPER)
    pm = vlkd_core.reset_plugin_manager()
    assert (tmp_path / "order").read_text().split()[-2:] == ["alpha", "wrapper-after"]
    assert pm.plugins["wrapping"].registered == {"heads": ["before-head", "after-head"]}
    assert vlkd_core.get_component("heads", "after-head").plugin == "wrapping"
    assert vlkd_core.get_component("heads", "shared-head").plugin == "alpha"
    assert (pm.plugins["raises"].status, pm.plugins["raises"].error) == ("broken", "ValueError: registration failed halfway")
    assert (pm.plugins["bad-wrapper"].status, pm.plugins["bad-wrapper"].error) == ("broken", "RuntimeError: wrapper teardown failed")
    for name in ("half-registered", "doomed-head"):  # all or nothing per plugin
        assert name not in {c.name for kind in ("heads", "losses") for c in vlkd_core.list_components(kind)}
    listed = runner.invoke(app, ["plugins", "list", "--json"])
    rows = {row["plugin"]: row for row in json.loads(listed.stdout)}
    assert rows["wrapping"]["status"] == "ok" and rows["raises"]["status"] == "broken"
