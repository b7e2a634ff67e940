"""The CLIP-distillation losses under torch.distributed (2 gloo CPU processes) against the
independent references (clipkd_reference.py) on the concatenated batch, with the teacher model
wider than the student (so feature-distill and interactive-contrast project) and, for
interactive-contrast, caption ids shared across ranks.

Rank r's loss L_r is the mean over its own rows (scored against every rank's columns), so
mean_r L_r == L of the global batch; rank r's gradient on its local rows divided by W == those
rows of the global gradient; mean_r of the parameter gradients (scale, projections) == the
global ones, which is what DDP's averaging produces.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import vlkd_core
from vlkd_core.sdk import run_local_processes

sys.path.insert(0, str(Path(__file__).parent))  # spawned ranks import the worker by name
import clipkd_dist_worker as worker  # noqa: E402
import clipkd_reference as ref  # noqa: E402

WORLD = 2
pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # spawns fresh processes (> 5 s)


@pytest.fixture(scope="module")
def ranks():
    return run_local_processes(worker.run, WORLD)


def reference(case: str):
    """The paper's objective on the whole batch in float64, at a fresh loss's parameters:
    value, the gradients of the student's image and text, and of each trainable parameter."""
    name = case.split("/")[0]
    fresh = vlkd_core.build_loss(name, widths=worker.WIDTHS)
    params = {n: p.detach().double().clone().requires_grad_(p.requires_grad) for n, p in fresh.named_parameters()}
    si, st, ti, tt = (x.double() for x in worker.batch())
    si.requires_grad_(True)
    st.requires_grad_(True)
    scale = lambda: torch.exp(params["logit_scale"])  # noqa: E731
    proj = lambda side: (params[f"{side}_proj.weight"], params[f"{side}_proj.bias"])  # noqa: E731
    value = {
        "affinity-mimic": lambda: ref.affinity_mimic(si, st, ti, tt, scale(), 30.0),
        "relation-distill": lambda: ref.kl_relation(si, st, ti, tt, scale(), 30.0),
        "mobileclip-kd": lambda: ref.kl_relation(si, st, ti, tt, scale(), 100.0),
        "feature-distill": lambda: ref.feature_distill(si, st, ti, tt, proj("image"), proj("text")),
        "interactive-contrast": lambda: ref.interactive_contrast(si, st, ti, tt, params["logit_scale"], proj("image"),
                                                                 proj("text"), worker.CASES[case]),
    }[name]()
    value.backward()
    return value, si.grad, st.grad, {n: p.grad for n, p in params.items() if p.requires_grad}


@pytest.mark.parametrize("case", list(worker.CASES))
def test_two_processes_give_the_papers_loss_and_gradients_of_the_global_batch(ranks, case):
    value, image_grad, text_grad, param_grads = reference(case)
    n = worker.GLOBAL_BATCH // WORLD
    assert sum(res[case]["value"] for res in ranks).item() / WORLD == pytest.approx(value.item(), rel=1e-5)
    assert not torch.allclose(ranks[0][case]["value"], ranks[1][case]["value"])  # each rank its own rows
    for r, res in enumerate(ranks):
        for key, want in (("image", image_grad), ("text", text_grad)):
            assert torch.allclose(res[case][key].double() / WORLD, want[r * n:(r + 1) * n], atol=1e-5), (key, r)
    assert param_grads  # a learnable scale or projections, whose averaged gradients must agree
    for name, want in param_grads.items():
        got = sum(res[case]["params"][name] for res in ranks).double() / WORLD
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), name
