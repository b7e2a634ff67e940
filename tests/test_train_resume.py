"""A run killed with SIGKILL and resumed ends with the weights of an uninterrupted run;
the same job under torchrun with 2 processes trains too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from train_helpers import SHAPES, TINY, TOWERS, decreased, losses, run_cli

JOB = [*TINY, "--loss", "infonce", "--teacher", "none", "--epochs", "3", "--save-every", "3"]


def _final(run):
    latest = (run / "checkpoints" / "LATEST").read_text()
    return latest, load_file(run / "checkpoints" / latest / "weights.safetensors")


@pytest.mark.slow
def test_sigkill_then_resume_latest_matches_uninterrupted(tmp_path):
    assert run_cli(["train", *JOB, "--output-dir", str(tmp_path), "--name", "full"]).returncode == 0
    env = dict(os.environ, COLUMNS="200")
    cmd = [sys.executable, "-m", "vlkd_cli", "train", *JOB, "--output-dir", str(tmp_path), "--name", "killed"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "checkpoints" / "step-0000009"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = (tmp_path / "killed" / "checkpoints" / "LATEST").read_text()
    assert latest < "step-0000024", "the run finished before it could be killed"
    resumed = run_cli(["train", *JOB, "--output-dir", str(tmp_path), "--name", "killed", "--resume", "latest"])
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
