"""Lifecycle hooks do what their specs say: vlkd_on_step_end after every optimizer step without
turning the loss into a number (no host sync on steps that do not log), vlkd_on_log every
--log-every with floats, a frozen RunContext instead of the Trainer, and `vlkd eval` firing
vlkd_on_eval_end. The plugin is installed through a real entry point."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

import vlkd_core
from train_helpers import TINY, read_jsonl
from vlkd_cli.app import app

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

HOOKS = """
    import dataclasses
    from vlkd_core import hookimpl

    CALLS = []   # (hook, step, what it saw)
    SEEN = []    # (step, the loss tensor vlkd_on_step_end got), kept alive so ids stay unique

    @hookimpl
    def vlkd_on_train_start(run):
        try:
            run.step = 99
            frozen = False
        except dataclasses.FrozenInstanceError:
            frozen = True
        run.state["mine"] = object()
        CALLS.append(("start", run.step, {"type": type(run).__name__, "frozen": frozen, "rank": run.rank,
                                          "world": run.world_size, "command": run.command,
                                          "has_optimizer": hasattr(run, "optimizer")}))

    @hookimpl
    def vlkd_on_step_end(run, step, metrics):
        SEEN.append((step, metrics.tensor("loss")))   # read without converting it
        CALLS.append(("step", step, run.step == step))

    @hookimpl
    def vlkd_on_log(run, step, metrics):
        CALLS.append(("log", step, {k: type(v).__name__ for k, v in metrics.items()}))

    @hookimpl
    def vlkd_on_eval_end(run, step, metrics):
        CALLS.append(("eval", step, {"command": run.command, "name": run.config.name, "metrics": dict(metrics),
                                     "run_dir": str(run.run_dir), "epoch": run.epoch}))

    @hookimpl
    def vlkd_on_train_end(run, summary):
        CALLS.append(("end", run.step, run.state.get("mine") is not None))
"""
EVAL = "retrieval:dataset=shapes,dataset.size=32,max_samples=64"


class Conversions(torch.overrides.TorchFunctionMode):
    """Records every tensor turned into a Python value (a host sync on an accelerator)."""

    def __init__(self):
        super().__init__()
        self.converted: dict[int, torch.Tensor] = {}  # by id, the tensor kept alive: ids stay unique

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("__float__", "item", "__bool__", "__int__", "tolist") and args:
            self.converted[id(args[0])] = args[0]
        return func(*args, **(kwargs or {}))


def test_step_end_every_step_without_a_sync_log_every_n_and_a_frozen_context(tmp_path, plugin_env):
    plugin_env("vlkd-hook-probe", "hook_probe", "hook-probe", HOOKS)
    vlkd_core.reset_plugin_manager()
    conversions = Conversions()
    with conversions:
        result = CliRunner().invoke(app, ["train", *TINY, "--loss", "infonce", "--teacher", "none", "--max-steps", "12",
                                          "--log-every", "5", "--eval", EVAL, "--output-dir", str(tmp_path), "--name", "run"])
    assert result.exit_code == 0, result.output
    probe = sys.modules["hook_probe"]
    calls = probe.CALLS
    assert calls[0] == ("start", 0, {"type": "RunContext", "frozen": True, "rank": 0, "world": 1, "command": "train",
                                     "has_optimizer": False})
    assert [c[1] for c in calls if c[0] == "step"] == list(range(1, 13))   # every optimizer step
    assert all(c[2] for c in calls if c[0] == "step")                      # run.step is the step
    logs = [c for c in calls if c[0] == "log"]
    assert [c[1] for c in logs] == [5, 10, 12]
    assert {t for c in logs for t in c[2].values()} == {"float", "int"} and "loss" in logs[0][2]
    assert calls[-1] == ("end", 12, True)                                  # run.state lives for the run
    # the loss handed to vlkd_on_step_end is detached, and on steps that do not log nobody
    # (engine or builtin logger) turned it into a number; on logging steps the engine did
    for step, loss in probe.SEEN:
        assert not loss.requires_grad
        assert (id(loss) in conversions.converted) == (step in (5, 10, 12)), step
    # the same numbers reach metrics.jsonl, on the logging steps only
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records if r["type"] == "train"] == [5, 10, 12]


def test_vlkd_eval_fires_the_eval_hook_with_the_run_as_context(tmp_path, plugin_env):
    plugin_env("vlkd-hook-probe", "hook_probe_eval", "hook-probe", HOOKS)
    vlkd_core.reset_plugin_manager()
    runner = CliRunner()
    trained = runner.invoke(app, ["train", *TINY, "--loss", "infonce", "--teacher", "none", "--max-steps", "4",
                                  "--eval", EVAL, "--output-dir", str(tmp_path), "--name", "run"])
    assert trained.exit_code == 0, trained.output
    probe = sys.modules["hook_probe_eval"]
    during = [c for c in probe.CALLS if c[0] == "eval"]
    assert len(during) == 1 and during[0][2]["command"] == "train"
    evaluated = runner.invoke(app, ["eval", str(tmp_path / "run")])
    assert evaluated.exit_code == 0, evaluated.output
    hook, step, seen = [c for c in probe.CALLS if c[0] == "eval"][-1]
    written = json.loads((tmp_path / "run" / "eval.json").read_text())["metrics"]
    assert (step, seen["command"], seen["name"], seen["epoch"]) == (4, "eval", "run", 0)
    assert seen["metrics"] == written and seen["run_dir"] == str(tmp_path / "run")
    # the builtin loggers keep a run's own files for training: one eval record, not two
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert sum(r["type"] == "eval" for r in records) == 1
