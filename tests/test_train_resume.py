"""A run killed with SIGKILL (at a chosen step, by a test plugin's hook) and resumed ends with
the weights of an uninterrupted run; the same job under torchrun with 2 processes trains too."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from train_helpers import SHAPES, TINY, TOWERS, decreased, losses, run_cli

JOB = [*TINY, "--loss", "infonce", "--teacher", "none", "--epochs", "3", "--save-every", "3"]


def _final(run):
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    return latest, load_file(run / "checkpoints" / latest / "weights.safetensors")


# Installed through a real entry point: SIGKILLs its own process at the end of step
# VLKD_TEST_KILL_AT_STEP, so the kill lands at a known step instead of racing the run.
KILLER = """
    import os
    import signal

    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_on_step_end(run, step, metrics):
        if step == int(os.environ.get("VLKD_TEST_KILL_AT_STEP", "0")):
            os.kill(os.getpid(), signal.SIGKILL)
"""
KILL_AT = 11  # mid-epoch 2, two steps after the checkpoint at step 9 (--save-every 3)


@pytest.mark.slow
@pytest.mark.parametrize("optimization", [
    [],                                                                     # adamw, warmup-cosine
    ["--optimizer", "sgd", "--optimizer-option", "nesterov=true", "--lr", "0.05", "--scheduler", "linear"],
], ids=["adamw-warmup-cosine", "sgd-linear"])
def test_sigkill_then_resume_latest_matches_uninterrupted(tmp_path, plugin_env, optimization):
    plugin_env("vlkd-test-killer", "killer_plugin", "killer", KILLER)
    path = os.pathsep.join(p for p in (str(plugin_env.site), os.environ.get("PYTHONPATH")) if p)
    run = ["train", *JOB, *optimization, "--output-dir", str(tmp_path)]
    assert run_cli([*run, "--name", "full"], env={"PYTHONPATH": path}).returncode == 0
    killed = run_cli([*run, "--name", "killed"],
                     env={"PYTHONPATH": path, "VLKD_TEST_KILL_AT_STEP": str(KILL_AT)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "killed" / "checkpoints" / "LATEST").read_text().strip() == "step-0000009"
    resumed = run_cli([*run, "--name", "killed", "--resume", "latest"], env={"PYTHONPATH": path})
    assert resumed.returncode == 0, resumed.stderr
    name_a, a = _final(tmp_path / "full")
    name_b, b = _final(tmp_path / "killed")
    assert name_a == name_b == "step-0000024"
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def shapes_csv(tmp_path_factory):
    from vlkd_core.datasets.shapes import ShapesDataset
    root = tmp_path_factory.mktemp("csv")
    data = ShapesDataset(size=32, length=256, two_shapes=0.0)
    rows = ["filepath,title"]
    for i in range(len(data)):
        data[i]["image"].save(root / f"{i}.png")
        rows.append(f"{i}.png,{data[i]['text']}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    return root / "train.csv"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("loss, extra", [
    ("infonce", ["--teacher", "none"]),                                   # gathered negatives
    ("seed", ["--teacher", "text", "--loss-option", "seed.queue_size=96"]),  # gathered queue
    ("protocpc", ["--teacher", "text", "--prototypes", "32"]),            # all-reduced prior
    ("barlowtwins", ["--teacher", "text", "--data", "csv", "--lr", "5e-4"]),  # summed c, CSV data
])
def test_two_processes_with_torchrun(tmp_path, shapes_csv, loss, extra):
    data = ["--data-option", f"path={shapes_csv}"] if "csv" in extra else SHAPES
    result = run_cli(["train", *TOWERS, *data, "--loss", loss, *extra, "--epochs", "3", "--output-dir", str(tmp_path),
                      "--name", "ddp", "--batch-size", "16", "--nproc-per-node", "2"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = tmp_path / "ddp"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 * 256 // 32  # 16 per process x 2 processes per step
    assert decreased(losses(run))
    assert len(losses(run)) == summary["steps"]  # rank 0 alone writes the log
