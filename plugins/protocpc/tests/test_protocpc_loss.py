"""The ProtoCPC loss against an independent computation (value, gradient, prior update), lazy
state round trips and the contract kit."""
from __future__ import annotations

import inspect

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

torch.set_num_threads(1)
B, K = 6, 7


def logits(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, generator=gen) * 2, torch.randn(B, K, generator=gen) * 2 + 1


def assignment(t, tt):
    z = t / tt
    q = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return q / q.sum(dim=1, keepdim=True)


def reference(s, t, prior, ts=0.1, tt=0.04):
    """(1/B) Σ_b [−Σ_k q_bk s_bk/τ_s + log Σ_k π_k exp(s_bk/τ_s)]."""
    q = assignment(t, tt)
    total = 0.0
    for b in range(len(s)):
        total = total - (q[b] * s[b]).sum() / ts + torch.log((prior[0] * torch.exp(s[b] / ts)).sum())
    return total / len(s)


def run(fn, s, *args):
    s = s.clone().requires_grad_(True)
    value = vlkd_core.loss_value(fn(s, *args))
    value.backward()
    return value.detach(), s.grad


def test_matches_reference_fresh_and_after_prior_updates():
    loss = vlkd_core.build_loss("protocpc", prior_momentum=0.7)
    prior = torch.ones(1, K)
    for step in range(3):
        s, t = logits(step)
        v, g = run(loss, s, t)
        rv, rg = run(reference, s, t, prior)
        assert torch.allclose(v, rv, atol=1e-5) and torch.allclose(g, rg, atol=1e-6)
        prior = 0.7 * prior + 0.3 * K * assignment(t, 0.04).mean(dim=0, keepdim=True)
        assert torch.allclose(loss.prior, prior, atol=1e-6)
    assert not torch.allclose(prior, torch.ones(1, K))  # the prior really moved


def test_temperatures_are_used():
    s, t = logits(5)
    loss = vlkd_core.build_loss("protocpc", student_temp=0.3, teacher_temp=0.2)
    v, g = run(loss, s, t)
    rv, rg = run(lambda a, b: reference(a, b, torch.ones(1, K), 0.3, 0.2), s, t)
    assert torch.allclose(v, rv, atol=1e-5) and torch.allclose(g, rg, atol=1e-6)


def test_teacher_is_detached_and_eval_does_not_move_the_prior():
    loss = vlkd_core.build_loss("protocpc")
    s, t = logits(7)
    t.requires_grad_(True)
    run(loss, s, t)
    assert t.grad is None
    before = loss.prior.clone()
    loss.eval()
    loss(s, t)
    assert torch.equal(loss.prior, before)


def test_state_round_trips_into_a_fresh_loss():
    used = vlkd_core.build_loss("protocpc")
    for step in range(2):
        used(*logits(step))
    fresh = vlkd_core.build_loss("protocpc")
    assert fresh.prior.shape == (1, 0) and list(fresh.state_dict()) == ["prior"]
    fresh.load_state_dict(used.state_dict())
    s, t = logits(9)
    assert torch.equal(vlkd_core.loss_value(used(s, t)), vlkd_core.loss_value(fresh(s, t)))
    assert torch.equal(used.prior, fresh.prior)


def test_errors():
    with pytest.raises(UsageError):
        vlkd_core.build_loss("protocpc", teacher_temp=0)
    with pytest.raises(UsageError):
        vlkd_core.build_loss("protocpc", prior_momentum=2)
    loss = vlkd_core.build_loss("protocpc")
    loss(*logits(0))
    with pytest.raises(UsageError, match="prototypes"):
        loss(torch.randn(B, K + 2), torch.randn(B, K + 2))


def test_contract_kit_and_docs():
    check_loss(lambda: vlkd_core.build_loss("protocpc"), name="protocpc")
    cls = vlkd_core.get_component("losses", "protocpc").resolve()
    assert cls.formula and cls.paper and inspect.getdoc(cls)
    assert cls.needs.teacher and cls.needs.prototype_head and cls.needs.gathers
