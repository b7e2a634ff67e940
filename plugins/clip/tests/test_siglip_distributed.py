"""SigLIP under torch.distributed (gloo CPU processes): the chunked forms (``bidir``, ``shift``:
text chunks passed between neighbouring ranks) against the all-gather form and against the
paper's formula on the concatenated batch (clip_reference.sigmoid_reference), with and without
shared caption ids.

Rank r's loss L_r is its B rows against every text of the global batch, divided by B, so
mean_r L_r == L (all W·B rows); rank r's gradient on its local rows divided by W == those
rows of L's gradient; mean_r of the scale and bias gradients == L's (what DDP's averaging
produces). On 2 processes ``bidir`` is one shift; 3 processes make it pass chunks both ways.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from vlkd_core.sdk import run_local_processes

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import clip_dist_worker as worker  # noqa: E402
from clip_reference import sigmoid_reference  # noqa: E402

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # each world spawns fresh processes (> 5 s)
CASES = ["plain", "labels"]
GRADS = ("img_grad", "txt_grad")
PARAM_GRADS = ("scale_grad", "bias_grad")


@pytest.fixture(scope="module")
def formula():
    """The paper's formula pair by pair on the whole batch (float64) at the workers' scale and bias."""
    out = {}
    for case, labels in (("plain", None), ("labels", worker.LABELS)):
        img, txt = (x.double().requires_grad_(True) for x in worker.batch())
        log_scale = torch.tensor(math.log(10), dtype=torch.float64, requires_grad=True)
        bias = torch.tensor(worker.SIGLIP_OPTIONS["init_logit_bias"], dtype=torch.float64, requires_grad=True)
        value = sigmoid_reference(img, txt, log_scale, bias, labels)
        value.backward()
        out[case] = {"value": value.detach(), "img_grad": img.grad, "txt_grad": txt.grad,
                               "scale_grad": log_scale.grad, "bias_grad": bias.grad}
    return out


@pytest.fixture(scope="module")
def two():
    return run_local_processes(worker.run_siglip, 2)


def _check_world(ranks: list[dict], formula: dict, case: str) -> None:
    world, n = len(ranks), worker.GLOBAL_BATCH // len(ranks)
    for form in ("bidir", "shift"):  # chunked == all-gather, rank by rank
        for res in ranks:
            got, want = res[form, case], res["gather", case]
            assert torch.allclose(got["value"], want["value"], atol=1e-6), (form, case)
            for key in GRADS + PARAM_GRADS:
                assert torch.allclose(got[key], want[key], atol=1e-6), (form, case, key)
    ref = formula[case]
    for form in ("bidir", "shift", "gather"):  # every form == the formula on the global batch
        mean = sum(res[form, case]["value"] for res in ranks).item() / world
        assert mean == pytest.approx(ref["value"].item(), rel=1e-5), form
        for r, res in enumerate(ranks):
            for key in GRADS:
                assert torch.allclose(res[form, case][key].double() / world, ref[key][r * n:(r + 1) * n], atol=1e-5), (form, key, r)
        for key in PARAM_GRADS:
            got = sum(res[form, case][key] for res in ranks).item() / world
            assert got == pytest.approx(ref[key].item(), rel=1e-4, abs=1e-6), (form, key)
    assert not torch.allclose(ranks[0]["gather", case]["value"], ranks[1]["gather", case]["value"])  # really local


@pytest.mark.parametrize("case", CASES)
def test_chunked_equals_all_gather_and_the_global_batch_on_two_processes(two, formula, case):
    _check_world(two, formula, case)


@pytest.fixture(scope="module")
def three():
    return run_local_processes(worker.run_siglip, 3)


@pytest.mark.parametrize("case", CASES)
def test_bidirectional_exchange_on_three_processes(three, formula, case):
    _check_world(three, formula, case)
