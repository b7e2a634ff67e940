"""InfoNCE / UniCL against an independent computation (values and gradients of both inputs and
of the learnable scale), soft targets for shared labels, temperature handling, contract kit."""
from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

sys.path.insert(0, str(Path(__file__).parent))
from clip_reference import features, run_with_grads, reference  # noqa: E402

torch.set_num_threads(1)


def compare(loss, img, txt, labels=None):
    out, img_grad, txt_grad = run_with_grads(loss, img, txt, labels)
    i2, t2 = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    ls = loss.logit_scale.detach().clone().requires_grad_(True)
    ref = reference(i2, t2, ls, labels)
    ref.backward()
    assert torch.allclose(out["loss"], ref, atol=1e-5), (out["loss"], ref)
    assert torch.allclose(img_grad, i2.grad, atol=1e-6) and torch.allclose(txt_grad, t2.grad, atol=1e-6)
    if loss.logit_scale.requires_grad:
        assert torch.allclose(loss.logit_scale.grad, ls.grad, atol=1e-5)
    return out


@pytest.mark.parametrize("name", ["infonce", "unicl"])
def test_matches_reference_without_labels(name):
    loss = vlkd_core.build_loss(name)
    out = compare(loss, *features(0))
    assert torch.allclose(out["logit_scale"], torch.tensor(1 / 0.07))


@pytest.mark.parametrize("name", ["infonce", "unicl"])
def test_shared_labels_are_soft_positives(name):
    img, txt = features(1)
    labels = torch.tensor([3, 1, 3, 0, 1])
    compare(vlkd_core.build_loss(name), img, txt, labels)
    # and that differs from plain InfoNCE on the same features
    plain = vlkd_core.build_loss(name)(img, txt)["loss"]
    assert not torch.allclose(plain, vlkd_core.build_loss(name)(img, txt, labels=labels)["loss"])


def test_all_distinct_labels_reduce_exactly_to_infonce():
    img, txt = features(2)
    loss = vlkd_core.build_loss("infonce")
    assert torch.allclose(loss(img, txt)["loss"], loss(img, txt, labels=torch.tensor([9, 4, 7, 0, 2]))["loss"])


def test_scale_keeps_its_gradient_at_the_cap_and_is_clamped_after_the_step():
    cap = 20.0
    loss = vlkd_core.build_loss("infonce", init_temperature=0.001, max_logit_scale=cap)
    assert torch.isclose(loss.logit_scale.detach(), torch.tensor(math.log(cap)))  # starts at the cap
    img, _ = features(3)
    out = compare(loss, img, img.clone())  # aligned pairs: a larger scale lowers the loss
    assert torch.allclose(out["logit_scale"], torch.tensor(cap))
    assert loss.logit_scale.grad < 0  # alive at the cap (a clamp inside forward would make it 0)
    torch.optim.SGD([loss.logit_scale], lr=1.0).step()
    assert loss.logit_scale.item() > math.log(cap)  # the step went past the cap...
    assert loss.needs.after_step
    loss.after_optimizer_step()
    assert loss.logit_scale.item() == pytest.approx(math.log(cap))  # ...and is back under it


def test_fixed_temperature_is_not_trained_but_kept_in_state():
    loss = vlkd_core.build_loss("infonce", init_temperature=0.5, learn_temperature=False)
    assert not loss.logit_scale.requires_grad and "logit_scale" in loss.state_dict()
    compare(loss, *features(4))


def test_learned_scale_round_trips_through_state_dict():
    a = vlkd_core.build_loss("infonce")
    with torch.no_grad():
        a.logit_scale.fill_(2.5)
    b = vlkd_core.build_loss("infonce")
    b.load_state_dict(a.state_dict())
    img, txt = features(5)
    assert torch.equal(a(img, txt)["loss"], b(img, txt)["loss"])


@pytest.mark.parametrize("options", [{"init_temperature": 0.0}, {"max_logit_scale": -1.0}])
def test_bad_options(options):
    with pytest.raises(UsageError):
        vlkd_core.build_loss("infonce", **options)


def test_bad_shapes():
    loss = vlkd_core.build_loss("infonce")
    with pytest.raises(UsageError):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(UsageError, match="labels"):
        loss(torch.randn(4, 3), torch.randn(4, 3), labels=torch.tensor([0, 1]))


@pytest.mark.parametrize("name", ["infonce", "unicl"])
def test_contract_kit_and_docs(name):
    check_loss(lambda: vlkd_core.build_loss(name), name=name)
    cls = vlkd_core.get_component("losses", name).resolve()
    assert cls.formula and "arXiv:" in cls.paper and inspect.getdoc(cls)
    assert cls.needs.symmetric and cls.needs.labels and cls.needs.gathers and not cls.needs.teacher
