"""KD losses under torch.distributed (2 gloo CPU processes) against one process on the
concatenated batch.

What is compared (the DDP convention of vlkd_core._runtime.distributed): rank r computes the loss L_r on
its half of the batch; DDP averages gradients over ranks, so the objective it optimises is
mean_r L_r. Hence, per step: mean_r L_r equals the single-process loss L, and rank r's gradient
on its local student rows divided by the world size equals the rows of dL/ds of the single
process. Queue buffers must end identical on every rank and equal to the single process's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core.sdk import run_local_processes

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import kd_dist_worker as worker  # noqa: E402
from kd_reference import fifo, initial_queue, l2n, ref_barlowtwins, ref_seed  # noqa: E402

WORLD = 2
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


@pytest.fixture(scope="module")
def results():
    torch.set_num_threads(1)
    return run_local_processes(worker.run_steps, WORLD), worker.run_steps()


@pytest.mark.parametrize("name", list(worker.LOSSES))
def test_ranks_reproduce_the_single_process_loss_gradient_and_state(results, name):
    ranks, single = results
    ref = single[name]
    n = worker.GLOBAL_BATCH // WORLD
    for step in range(worker.STEPS):
        mean = sum(res[name]["values"][step] for res in ranks) / WORLD
        assert torch.allclose(mean, ref["values"][step], atol=1e-5, rtol=1e-5), (name, step)
        for r, res in enumerate(ranks):
            expected = ref["grads"][step][r * n:(r + 1) * n]
            assert torch.allclose(res[name]["grads"][step] / WORLD, expected, atol=1e-6, rtol=1e-4), (name, step, r)
    for key, tensor in ref["state"].items():
        for res in ranks:
            assert torch.allclose(res[name]["state"][key].float(), tensor.float(), atol=1e-6), (name, key)
        assert torch.equal(ranks[0][name]["state"][key], ranks[1][name]["state"][key])


def test_barlowtwins_every_rank_sees_the_global_loss(results):
    ranks, single = results
    for res in ranks:  # c is summed over ranks, so the value itself is the global one
        assert torch.allclose(res["barlowtwins"]["values"][0], single["barlowtwins"]["values"][0], atol=1e-5)


def _reference_run(fn):
    values, grads = [], []
    for step in range(worker.STEPS):
        s, t = worker.global_batch(step)
        s.requires_grad_(True)
        value = fn(step, s, t)
        value.backward()
        values.append(value.detach())
        grads.append(s.grad)
    return values, grads


def test_single_process_run_matches_the_written_out_formulas(results):
    _, single = results
    queue, ptr = initial_queue(worker.LOSSES["seed"]["queue_size"], worker.DIM), 0

    def seed_step(step, s, t):
        nonlocal queue, ptr
        value = ref_seed(s, t, queue)
        queue, ptr = fifo(queue, ptr, l2n(t))
        return value

    for name, fn in (("barlowtwins", lambda step, s, t: ref_barlowtwins(s, t)), ("seed", seed_step)):
        values, grads = _reference_run(fn)
        for step in range(worker.STEPS):
            assert torch.allclose(single[name]["values"][step], values[step], atol=1e-5), (name, step)
            assert torch.allclose(single[name]["grads"][step], grads[step], atol=1e-6, rtol=1e-4), (name, step)
    assert torch.allclose(single["seed"]["state"]["queue"], queue, atol=1e-6)
