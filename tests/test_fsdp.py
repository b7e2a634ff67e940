"""--fsdp on 2 processes (FSDP2 over gloo on CPU): the same losses as DDP within 1e-5, sharded
checkpoints (per-rank safetensors slices) that `vlkd eval`-style loading puts back together, and
a SIGKILL mid-run resumed to the uninterrupted run's exact weights."""
from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import make_distribution
from train_helpers import TOWERS, losses, run_cli
from vlkd_core.training import checkpoint as ckpt

# both towers train (symmetric InfoNCE: gathers across ranks), 5 steps of 2 x 16 samples
JOB = [*TOWERS, "--batch-size", "16", "--data-option", "size=32", "--data-option", "length=160",
       "--loss", "infonce", "--teacher", "none", "--epochs", "1", "--nproc-per-node", "2"]
KILLER = """
    import os
    import signal

    from vlkd_core import hookimpl

    @hookimpl
    def vlkd_on_step_end(run, step, metrics):
        if step == int(os.environ.get("VLKD_TEST_KILL_AT_STEP", "0")) and run.is_main:
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """One uninterrupted --fsdp run (checkpoints every 2 steps), the reference of both tests,
    with the killer plugin installed (idle unless VLKD_TEST_KILL_AT_STEP is set). Returns
    (output dir, the job's arguments, the environment that finds the plugin)."""
    root = tmp_path_factory.mktemp("fsdp")
    make_distribution(root / "site", "vlkd-test-killer", "killer_plugin", "killer", KILLER)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(root / "site"), os.environ.get("PYTHONPATH")) if p)}
    job = ["train", *JOB, "--fsdp", "--save-every", "2", "--output-dir", str(root)]
    full = run_cli([*job, "--name", "fsdp"], env=env)
    assert full.returncode == 0, full.stderr[-3000:]
    return root, job, env


def _weights(run):
    folder = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    from vlkd_core.training.fsdp import full_weights
    return folder.name, full_weights(folder)


@pytest.mark.slow
@pytest.mark.distributed
def test_fsdp_losses_match_ddp_and_checkpoints_are_sharded(tmp_path, fsdp_run):
    ddp = run_cli(["train", *JOB, "--output-dir", str(tmp_path), "--name", "ddp"])
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    fsdp = fsdp_run[0] / "fsdp"
    a, b = losses(tmp_path / "ddp"), losses(fsdp)
    assert len(a) == len(b) == 5
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (a, b)
    folder = fsdp / "checkpoints" / "step-0000005"
    names = {p.name for p in folder.iterdir()}
    assert {"weights-rank00.safetensors", "weights-rank01.safetensors", "shards.json"} <= names
    assert "weights.safetensors" not in names and ckpt.verify(folder) is None
    info = json.loads((folder / "shards.json").read_text())
    assert info["world"] == 2 and any(n.startswith("model.image_tower") for n in info["sharded"])
    # put back together, the sharded weights equal DDP's within float tolerance
    from safetensors.torch import load_file
    plain = load_file(tmp_path / "ddp" / "checkpoints" / "step-0000005" / "weights.safetensors")
    _, full = _weights(fsdp)
    assert full.keys() == plain.keys()
    for key in plain:
        assert torch.allclose(full[key].float(), plain[key].float(), atol=1e-5), key
    # and a sharded run loads for evaluation like any other
    from vlkd_core.training.restore import load_run
    restored = load_run(fsdp)
    assert torch.equal(restored.model.image_tower.state_dict()["net.0.weight"], full["model.image_tower.net.0.weight"])
    import vlkd_core
    loaded = vlkd_core.load(fsdp)                # the public API reads it too
    assert torch.equal(loaded.image_tower.state_dict()["net.0.weight"], full["model.image_tower.net.0.weight"])


@pytest.mark.slow
@pytest.mark.distributed
def test_fsdp_sigkill_then_resume_is_exact(fsdp_run):
    root, job, env = fsdp_run
    killed = run_cli([*job, "--name", "killed"], env={**env, "VLKD_TEST_KILL_AT_STEP": "3"})
    assert killed.returncode != 0
    assert (root / "killed" / "checkpoints" / "LATEST").read_text().strip() == "step-0000002"
    resumed = run_cli([*job, "--name", "killed", "--resume", "latest"], env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    name_a, a = _weights(root / "fsdp")
    name_b, b = _weights(root / "killed")
    assert name_a == name_b == "step-0000005"
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert losses(root / "killed")[-3:] == losses(root / "fsdp")[-3:]


@pytest.mark.slow
def test_fsdp_needs_several_processes(tmp_path):
    result = run_cli(["train", *TOWERS, "--data-option", "length=64", "--fsdp", "--output-dir", str(tmp_path)])
    assert result.returncode == 2 and "--nproc-per-node" in result.stderr
