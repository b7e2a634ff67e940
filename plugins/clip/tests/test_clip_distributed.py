"""InfoNCE under torch.distributed (2 gloo CPU processes) against one process on the
concatenated batch.

Local-loss form: rank r scores its own B rows against all W·B gathered columns with labels
arange(B) + r·B, so its loss L_r is the mean over its rows only. DDP averages gradients, so the
objective it optimises is mean_r L_r. Compared, with and without shared labels:
mean_r L_r == L (single process); rank r's gradient on its local image and text rows divided by
W == those rows of the single-process gradient; mean_r of the logit-scale gradients == the
single-process one (what DDP's averaging produces).
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
from clip_reference import reference  # noqa: E402

WORLD = 2
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


@pytest.fixture(scope="module")
def results():
    torch.set_num_threads(1)
    return run_local_processes(worker.run, WORLD), worker.run()


@pytest.mark.parametrize("case", ["plain", "labels"])
def test_local_loss_form_reproduces_the_global_batch(results, case):
    ranks, single = results
    ref, n = single[case], worker.GLOBAL_BATCH // WORLD
    assert torch.allclose(sum(res[case]["value"] for res in ranks) / WORLD, ref["value"], atol=1e-5)
    assert not torch.allclose(ranks[0][case]["value"], ranks[1][case]["value"])  # really local
    for r, res in enumerate(ranks):
        for key in ("img_grad", "txt_grad"):
            assert torch.allclose(res[case][key] / WORLD, ref[key][r * n:(r + 1) * n], atol=1e-6), (case, key, r)
    mean_scale = sum(res[case]["scale_grad"] for res in ranks) / WORLD
    assert torch.allclose(mean_scale, ref["scale_grad"], atol=1e-5)


@pytest.mark.parametrize("case", ["plain", "labels"])
def test_single_process_run_matches_the_written_out_formula(results, case):
    _, single = results
    img, txt = [x.clone().requires_grad_(True) for x in worker.batch()]
    scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    value = reference(img, txt, scale, worker.LABELS if case == "labels" else None)
    value.backward()
    assert torch.allclose(single[case]["value"], value.detach(), atol=1e-5)
    assert torch.allclose(single[case]["img_grad"], img.grad, atol=1e-6)
    assert torch.allclose(single[case]["txt_grad"], txt.grad, atol=1e-6)
    assert torch.allclose(single[case]["scale_grad"], scale.grad, atol=1e-5)
