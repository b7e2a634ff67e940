"""SigLIP under torch.distributed (gloo CPU processes): the chunked forms (``bidir``, ``shift``:
text chunks passed between neighbouring ranks) against the all-gather form and against one
process on the concatenated batch, with and without shared caption ids.

Rank r's loss L_r is its B rows against every text of the global batch, divided by B, so
mean_r L_r == L (one process on all W·B rows); rank r's gradient on its local rows divided by W
== those rows of the single-process gradient; mean_r of the scale and bias gradients == the
single-process ones (what DDP's averaging produces). On 2 processes ``bidir`` is one shift; 3
processes make it pass chunks both ways.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vlkd_core.distributed import run_local_processes

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import clip_dist_worker as worker  # noqa: E402

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # each world spawns fresh processes (> 5 s)
CASES = ["plain", "labels"]
GRADS = ("img_grad", "txt_grad")
PARAM_GRADS = ("scale_grad", "bias_grad")


@pytest.fixture(scope="module")
def single():
    torch.set_num_threads(1)
    return worker.run_siglip()


@pytest.fixture(scope="module")
def two():
    return run_local_processes(worker.run_siglip, 2)


def _check_world(ranks: list[dict], single: dict, case: str) -> None:
    world, n = len(ranks), worker.GLOBAL_BATCH // len(ranks)
    for form in ("bidir", "shift"):  # chunked == all-gather, rank by rank
        for res in ranks:
            got, want = res[form, case], res["gather", case]
            assert torch.allclose(got["value"], want["value"], atol=1e-6), (form, case)
            for key in GRADS + PARAM_GRADS:
                assert torch.allclose(got[key], want[key], atol=1e-6), (form, case, key)
    ref = single["gather", case]
    for form in ("bidir", "shift", "gather"):  # every form == one process on the global batch
        assert torch.allclose(sum(res[form, case]["value"] for res in ranks) / world, ref["value"], atol=1e-5)
        for r, res in enumerate(ranks):
            for key in GRADS:
                assert torch.allclose(res[form, case][key] / world, ref[key][r * n:(r + 1) * n], atol=1e-6), (form, key, r)
        for key in PARAM_GRADS:
            assert torch.allclose(sum(res[form, case][key] for res in ranks) / world, ref[key], atol=1e-5), (form, key)
    assert not torch.allclose(ranks[0]["gather", case]["value"], ranks[1]["gather", case]["value"])  # really local


@pytest.mark.parametrize("case", CASES)
def test_chunked_equals_all_gather_and_the_global_batch_on_two_processes(two, single, case):
    _check_world(two, single, case)


@pytest.fixture(scope="module")
def three():
    return run_local_processes(worker.run_siglip, 3)


@pytest.mark.parametrize("case", CASES)
def test_bidirectional_exchange_on_three_processes(three, single, case):
    _check_world(three, single, case)
