"""all_gather_with_grad's backward reduce-scatters: on 2 real gloo processes each rank gets the
same gradient as the previous all-reduce-then-slice backward (bit for bit), and that gradient
is the sum over ranks of what every rank's loss put on this rank's slice."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core._runtime import distributed as D

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import gather_grad_worker  # noqa: E402

WORLD, BATCH, DIM = 2, 5, 7


pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

@pytest.fixture(scope="module", params=["float32", "float64"])
def ranks(request):
    return D.run_local_processes(gather_grad_worker.gather_grads, WORLD, BATCH, DIM, request.param)


def test_reduce_scatter_equals_the_all_reduce_backward(ranks):
    for out in ranks:
        assert out["grad"].shape == (BATCH, DIM)
        assert torch.equal(out["grad"], out["reference"])


def test_each_rank_gets_the_sum_of_every_rank_s_gradient_on_its_slice(ranks):
    upstream = sum(out["upstream"] for out in ranks)  # [WORLD * BATCH, DIM], summed over ranks
    for r, out in enumerate(ranks):
        assert torch.allclose(out["grad"], upstream[r * BATCH:(r + 1) * BATCH], atol=1e-6)
        assert out["grad"].abs().sum() > 0
