"""The DINO loss against an independent computation (value, gradient, center update), its
teacher-temperature warm-up, state built at its final shape and its round trips, and the
contract kit."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

torch.set_num_threads(1)
B, K = 6, 7


def build(k: int = K, **options):
    """The loss as the engine builds it: both widths are the prototype count."""
    return vlkd_core.build_loss("dino", widths={"student_dim": k, "teacher_dim": k}, **options)


def logits(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, generator=gen) * 2, torch.randn(B, K, generator=gen) * 2 + 1


def reference(s, t, center, ts=0.1, tt=0.04):
    """−(1/B) Σ_b Σ_k q_bk log p_bk written with explicit exp/log (max-shifted: τ_t is small)."""
    z = (t - center) / tt
    q = torch.exp(z - z.max(dim=1, keepdim=True).values)
    q = q / q.sum(dim=1, keepdim=True)
    log_p = s / ts - torch.log(torch.exp(s / ts).sum(dim=1, keepdim=True))
    return -(q * log_p).sum() / len(s)


def run(loss, s, t):
    s = s.clone().requires_grad_(True)
    value = vlkd_core.loss_value(loss(s, t))
    value.backward()
    return value.detach(), s.grad


def run_reference(s, t, center, **kw):
    s = s.clone().requires_grad_(True)
    value = reference(s, t, center, **kw)
    value.backward()
    return value.detach(), s.grad


def test_matches_reference_fresh_and_after_center_updates():
    loss = build(center_momentum=0.8)
    center = torch.zeros(1, K)
    for step in range(3):
        s, t = logits(step)
        (v, g), (rv, rg) = run(loss, s, t), run_reference(s, t, center)
        assert torch.allclose(v, rv, atol=1e-5) and torch.allclose(g, rg, atol=1e-6)
        center = 0.8 * center + 0.2 * t.mean(dim=0, keepdim=True)
        assert torch.allclose(loss.center, center, atol=1e-6)
    assert loss.center.shape == (1, K)


def test_temperatures_are_used():
    s, t = logits(5)
    loss = build(student_temp=0.3, teacher_temp=0.07, warmup_teacher_temp=0.07)
    v, g = run(loss, s, t)
    rv, rg = run_reference(s, t, torch.zeros(1, K), ts=0.3, tt=0.07)
    assert torch.allclose(v, rv, atol=1e-5) and torch.allclose(g, rg, atol=1e-6)


def test_teacher_temperature_warms_up_like_dino():
    loss = build(warmup_teacher_temp=0.04, teacher_temp=0.07,
                                warmup_teacher_temp_epochs=4)
    schedule = np.concatenate([np.linspace(0.04, 0.07, 4), np.full(6, 0.07)])  # DINO's own recipe
    for epoch in range(10):
        loss.set_epoch(epoch, 10)
        assert loss.current_teacher_temp() == pytest.approx(schedule[epoch])
    loss.set_epoch(1, 10)
    s, t = logits(6)
    v, _ = run(loss, s, t)
    assert torch.allclose(v, run_reference(s, t, torch.zeros(1, K), tt=0.05)[0], atol=1e-5)


def test_no_warmup_uses_teacher_temp_from_the_start():
    loss = build(warmup_teacher_temp=0.01, teacher_temp=0.05)
    loss.set_epoch(0, 3)
    assert loss.current_teacher_temp() == 0.05


def test_teacher_is_detached_and_eval_does_not_move_the_center():
    loss = build()
    s, t = logits(7)
    t.requires_grad_(True)
    run(loss, s, t)
    assert t.grad is None
    before = loss.center.clone()
    loss.eval()
    loss(s, t)
    assert torch.equal(loss.center, before)


def test_fresh_center_is_zeros_of_the_prototype_count():
    loss = build()
    assert list(loss.state_dict()) == ["center"] and torch.equal(loss.center, torch.zeros(1, K))


def test_state_round_trips_into_a_fresh_loss():
    used = build()
    for step in range(2):
        used(*logits(step))
    fresh = build()
    fresh.load_state_dict(used.state_dict())
    assert torch.equal(used.center, fresh.center)
    s, t = logits(9)
    assert torch.equal(vlkd_core.loss_value(used(s, t)), vlkd_core.loss_value(fresh(s, t)))
    assert torch.equal(used.center, fresh.center)


def test_another_prototype_count_is_refused_on_load():
    with pytest.raises(RuntimeError, match="size mismatch for center"):
        build().load_state_dict(build(K + 1).state_dict())


def test_prototype_count_mismatch_is_a_one_line_usage_error():
    loss = build()
    with pytest.raises(UsageError, match=f"logits have {K + 1} prototypes but the 'center' buffer has {K}") as err:
        loss(torch.randn(B, K + 1), torch.randn(B, K + 1))
    assert "\n" not in str(err.value)


def test_built_without_the_prototype_count_is_a_usage_error():
    with pytest.raises(UsageError, match="teacher_dim"):
        vlkd_core.build_loss("dino")


@pytest.mark.parametrize("options", [{"student_temp": 0}, {"center_momentum": 1.5},
                                     {"warmup_teacher_temp_epochs": -1}])
def test_bad_options(options):
    with pytest.raises(UsageError):
        build(**options)


def test_contract_kit_and_docs():
    check_loss("dino")  # by name: the kit passes its width as the prototype count
    cls = vlkd_core.get_component("losses", "dino").resolve()
    assert cls.formula and "arXiv:2104.14294" in cls.paper and inspect.getdoc(cls)
    n = cls.needs
    assert n.teacher and n.prototype_head and n.gathers and n.epochs
