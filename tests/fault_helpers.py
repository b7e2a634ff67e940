"""Shared pieces of the fault tests: the toy job of the fault plugin, runs in forked children
(the framework is already imported, so a run takes a fraction of a second and can die by a real
SIGKILL), and bitwise weight comparison."""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fault_plugin
import vlkd_core
from vlkd_core.errors import VlkdError
from vlkd_core._host.plugins import get_plugin_manager

KILLED = -9
STEPS = 24  # 3 epochs x 8 steps (128 samples, batch 16)

# the same job as config() below, as `vlkd train` flags (needs the plugin installed)
FLAGS = ["--image", "fault:plain", "--text", "fault:plain", "--image-option", "image_size=32",
         "--image-head", "none", "--text-head", "none", "--loss", "simreg", "--teacher", "text",
         "--data", "shapes", "--data-option", "size=32", "--data-option", "length=128",
         "--batch-size", "16", "--epochs", "3", "--warmup-steps", "2", "--log-every", "1",
         "--no-progress", "--eval", "fault", "--eval-every", "1"]


@pytest.fixture(scope="module")
def fault_plugin_registered():
    """The fault plugin registered in this process (forked runs inherit it)."""
    vlkd_core.reset_plugin_manager()
    get_plugin_manager().register_module(fault_plugin, "fault", distribution="vlkd-fault-test")
    yield
    vlkd_core.reset_plugin_manager()


def config(out: Path, name: str, dropout: bool = False, cache: str = "memory", **overrides):
    from vlkd_core.training import TrainConfig
    cfg = dict(image="fault:dropout" if dropout else "fault:plain", text="fault:plain",
               image_options={"image_size": 32}, image_head=None, text_head=None,
               loss="simreg", teacher="text", feature_cache=cache,
               data="shapes", data_options={"size": 32, "length": 128}, batch_size=16, epochs=3,
               warmup_steps=2, log_every=1, progress=False, eval=["fault"], eval_every=1,
               save_every=3, output_dir=str(out), name=name)
    cfg.update(overrides)
    return TrainConfig(**cfg)


def start_forked(cfg, point: str | None = None, n: int = 0, folder: str | None = None) -> int:
    """Start training in a forked child; returns its pid."""
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        try:
            from vlkd_core.training import train
            if point:
                fault_plugin.arm(point, n, folder)
            train(cfg)
            code = 0
        except VlkdError as exc:  # what the CLI's handle_errors does
            print(f"error: {exc}", file=sys.stderr)
            code = exc.exit_code
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_forked(cfg, point: str | None = None, n: int = 0) -> int:
    """Train in a forked child; returns its exit code (-9 when it was SIGKILLed)."""
    return wait(start_forked(cfg, point, n))


def final_weights(run: Path) -> tuple[str, dict]:
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    return latest, load_file(run / "checkpoints" / latest / "weights.safetensors")


def assert_same_weights(run_a: Path, run_b: Path, steps: int = STEPS) -> None:
    name_a, a = final_weights(run_a)
    name_b, b = final_weights(run_b)
    assert name_a == name_b == f"step-{steps:07d}"
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[:3]}"
