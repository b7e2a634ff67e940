"""The ProtoCPC loss against an independent computation (value, gradient, prior update), state
built at its final shape and its round trips, and the contract kit."""
from __future__ import annotations

import inspect

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.testing import check_loss

torch.set_num_threads(1)
B, K = 6, 7


def build(k: int = K, **options):
    """The loss as the engine builds it: both widths are the prototype count."""
    return vlkd_core.build_loss("protocpc", widths={"student_dim": k, "teacher_dim": k}, **options)


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
    loss = build(prior_momentum=0.7)
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
    loss = build(student_temp=0.3, teacher_temp=0.2)
    v, g = run(loss, s, t)
    rv, rg = run(lambda a, b: reference(a, b, torch.ones(1, K), 0.3, 0.2), s, t)
    assert torch.allclose(v, rv, atol=1e-5) and torch.allclose(g, rg, atol=1e-6)


def test_teacher_is_detached_and_eval_does_not_move_the_prior():
    loss = build()
    s, t = logits(7)
    t.requires_grad_(True)
    run(loss, s, t)
    assert t.grad is None
    before = loss.prior.clone()
    loss.eval()
    loss(s, t)
    assert torch.equal(loss.prior, before)


def test_fresh_prior_is_ones_of_the_prototype_count():
    loss = build()
    assert list(loss.state_dict()) == ["prior"] and torch.equal(loss.prior, torch.ones(1, K))


def test_state_round_trips_into_a_fresh_loss():
    used = build()
    for step in range(2):
        used(*logits(step))
    fresh = build()
    fresh.load_state_dict(used.state_dict())
    assert torch.equal(used.prior, fresh.prior)
    s, t = logits(9)
    assert torch.equal(vlkd_core.loss_value(used(s, t)), vlkd_core.loss_value(fresh(s, t)))
    assert torch.equal(used.prior, fresh.prior)


def test_another_prototype_count_is_refused_on_load():
    with pytest.raises(RuntimeError, match="size mismatch for prior"):
        build().load_state_dict(build(K + 2).state_dict())


def test_errors():
    with pytest.raises(UsageError):
        build(teacher_temp=0)
    with pytest.raises(UsageError):
        build(prior_momentum=2)
    with pytest.raises(UsageError, match="teacher_dim"):
        vlkd_core.build_loss("protocpc")  # the engine always passes the prototype count
    with pytest.raises(UsageError, match=f"logits have {K + 2} prototypes but the 'prior' buffer has {K}") as err:
        build()(torch.randn(B, K + 2), torch.randn(B, K + 2))
    assert "\n" not in str(err.value)


def test_contract_kit_and_docs():
    check_loss("protocpc")  # by name: the kit passes its width as the prototype count
    cls = vlkd_core.get_component("losses", "protocpc").resolve()
    assert cls.formula and cls.paper and inspect.getdoc(cls)
    assert cls.needs.teacher and cls.needs.prototype_head and cls.needs.gathers
