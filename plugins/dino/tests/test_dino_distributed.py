"""DINO under torch.distributed (2 gloo CPU processes) against one process on the concatenated
batch: DDP averages gradients, so mean_r L_r must equal the single-process loss, rank r's local
gradient divided by the world size must equal its rows of the single-process gradient, and the
center (all-reduced batch mean) must be identical on both ranks and equal to the single one."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core.sdk import run_local_processes

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import dino_dist_worker as worker  # noqa: E402

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

WORLD = 2


@pytest.mark.distributed
def test_two_ranks_reproduce_one_process():
    torch.set_num_threads(1)
    ranks, single = run_local_processes(worker.run, WORLD), worker.run()
    n = worker.GLOBAL_BATCH // WORLD
    for step in range(worker.STEPS):
        mean = sum(res["values"][step] for res in ranks) / WORLD
        assert torch.allclose(mean, single["values"][step], atol=1e-5), step
        for r, res in enumerate(ranks):
            assert torch.allclose(res["grads"][step] / WORLD, single["grads"][step][r * n:(r + 1) * n], atol=1e-6)
    assert torch.equal(ranks[0]["center"], ranks[1]["center"])
    assert torch.allclose(ranks[0]["center"], single["center"], atol=1e-6)
