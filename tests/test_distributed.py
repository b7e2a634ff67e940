"""vlkd_core._runtime.distributed: no-ops in one process; exact values and gradients across 2 gloo ranks."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core._runtime import distributed as D

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import dist_helpers_worker  # noqa: E402

BATCH, DIM, WORLD = 3, 4, 2


def test_single_process_helpers_are_no_ops():
    assert (D.world_size(), D.rank(), D.is_distributed()) == (1, 0, False)
    x = torch.randn(3, 4, requires_grad=True)
    assert D.all_gather_with_grad(x) is x
    assert D.all_reduce_sum(x) is x and D.all_reduce_mean(x) is x
    out = D.all_gather_no_grad(x)
    assert torch.equal(out, x) and not out.requires_grad


@pytest.fixture(scope="module")
def ranks():
    return D.run_local_processes(dist_helpers_worker.collectives, WORLD, BATCH, DIM)


@pytest.mark.slow
@pytest.mark.distributed
def test_rank_and_world(ranks):
    assert [(r["rank"], r["world"], r["distributed"]) for r in ranks] == [(0, 2, True), (1, 2, True)]


@pytest.mark.slow
@pytest.mark.distributed
def test_gather_with_grad_concatenates_and_sums_gradients_of_every_rank(ranks):
    gen = torch.Generator().manual_seed(0)
    full = torch.randn(WORLD * BATCH, DIM, generator=gen)
    weights = torch.randn(WORLD, WORLD * BATCH, DIM, generator=gen)
    for r, res in enumerate(ranks):
        assert torch.equal(res["gathered"], full)
        assert torch.equal(res["no_grad"], 2 * full) and not res["no_grad_requires_grad"]
        # d(Σ_r' loss_r')/dx_r: every rank's weights on rank r's slice
        expected = weights.sum(0)[r * BATCH:(r + 1) * BATCH]
        assert torch.allclose(res["gather_grad"], expected, atol=1e-6)


@pytest.mark.slow
@pytest.mark.distributed
def test_all_reduce_sum_and_mean_values_and_gradients(ranks):
    gen = torch.Generator().manual_seed(0)
    full = torch.randn(WORLD * BATCH, DIM, generator=gen)
    weights = torch.randn(WORLD, WORLD * BATCH, DIM, generator=gen)
    total = full[:BATCH] + full[BATCH:]
    grad = weights[0, :BATCH] + weights[1, :BATCH]
    for res in ranks:
        assert torch.allclose(res["sum"], total, atol=1e-6)
        assert torch.allclose(res["mean"], total / 2, atol=1e-6)
        assert torch.allclose(res["sum_grad"], grad, atol=1e-6)
        assert torch.allclose(res["mean_grad"], grad / 2, atol=1e-6)
