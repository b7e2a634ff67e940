"""Each CLIP-distillation loss against its independent reference (clipkd_reference.py): values and
gradients of the student's image and text embeddings, its learnable scale and its projections,
called as the engine calls them (LossCall over LossInputs with a teacher model's fields); the
teacher scales each loss uses; what tells the losses apart; projections, state and options."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.sdk import LossCall
from vlkd_core.testing import loss_inputs

sys.path.insert(0, str(Path(__file__).parent))
import clipkd_reference as ref  # noqa: E402

torch.set_num_threads(1)
B, D, DT = 5, 4, 6  # batch, student width, teacher model width
T_SCALE = 30.0       # the teacher model's σ in these tests
WIDTHS = {"student_dim": D, "teacher_dim": D, "teacher_model_dim": DT}


def batch(seed: int, teacher_dim: int = DT):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen),
            torch.randn(B, teacher_dim, generator=gen), torch.randn(B, teacher_dim, generator=gen))


def run(loss, si, st, ti, tt, t_scale=T_SCALE, labels=None):
    """The loss as the engine calls it: its forward's parameters filled from LossInputs (caption
    ids distinct unless given, as for a batch of distinct captions)."""
    fields = {"teacher_image": ti, "teacher_text": tt, "teacher_logit_scale": torch.tensor(t_scale),
              "labels": torch.arange(len(si)) if labels is None else labels}
    return LossCall(loss, loss.vlkd_name)(loss, loss_inputs(si, st, **fields))


def compare(loss, reference, data, t_scale=T_SCALE, labels=None):
    """Value and gradients (student inputs and every trainable parameter) of ``loss`` against
    ``reference(si, st, ti, tt, params)`` in float64, params being the loss's own as leaves."""
    si, st, ti, tt = data
    s1, t1 = si.clone().requires_grad_(True), st.clone().requires_grad_(True)
    out = run(loss, s1, t1, ti, tt, t_scale, labels)
    out["loss"].backward()
    s2, t2 = si.double().requires_grad_(True), st.double().requires_grad_(True)
    params = {n: p.detach().double().clone().requires_grad_(p.requires_grad) for n, p in loss.named_parameters()}
    want = reference(s2, t2, ti.double(), tt.double(), params)
    want.backward()
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7)
    assert torch.allclose(s1.grad.double(), s2.grad, atol=1e-5) and torch.allclose(t1.grad.double(), t2.grad, atol=1e-5)
    for name, p in loss.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad.double(), params[name].grad, atol=1e-5, rtol=1e-4), name
    return out


def _similarity_reference(fn, t_scale):
    return lambda si, st, ti, tt, p: fn(si, st, ti, tt, torch.exp(p["logit_scale"]), t_scale)


def test_affinity_mimic_is_tinyclips_cross_entropy_at_the_teachers_scale():
    loss = vlkd_core.build_loss("affinity-mimic")
    out = compare(loss, _similarity_reference(ref.affinity_mimic, T_SCALE), batch(0))
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert out["teacher_logit_scale"].item() == pytest.approx(T_SCALE)


def test_affinity_mimic_logit_scale_fixes_both_scales():
    loss = vlkd_core.build_loss("affinity-mimic", logit_scale=50.0)
    assert not loss.logit_scale.requires_grad and loss.logit_scale.exp().item() == pytest.approx(50.0)
    out = compare(loss, lambda si, st, ti, tt, p: ref.affinity_mimic(si, st, ti, tt, 50.0, 50.0), batch(1))
    assert out["teacher_logit_scale"].item() == pytest.approx(50.0)  # not the teacher model's 30


def test_relation_distill_is_clipkds_kl_at_the_teachers_scale():
    compare(vlkd_core.build_loss("relation-distill"), _similarity_reference(ref.kl_relation, T_SCALE), batch(2))


def test_mobileclip_kd_is_the_kl_at_the_fixed_teacher_scale():
    loss = vlkd_core.build_loss("mobileclip-kd")
    out = compare(loss, _similarity_reference(ref.kl_relation, 100.0), batch(3))  # --distill-logit-scale 100
    assert out["teacher_logit_scale"].item() == 100.0
    own = vlkd_core.build_loss("mobileclip-kd", dist_logit_scale=None)  # None: the teacher model's σ
    compare(own, _similarity_reference(ref.kl_relation, T_SCALE), batch(3))


def test_kl_and_cross_entropy_differ_by_the_teachers_entropy():
    """A student equal to its teacher: KL (relation-distill, mobileclip-kd) is 0, TinyCLIP's
    cross-entropy is the teacher's entropy (> 0); away from it their gradients agree."""
    si, st, _, _ = batch(4)
    same = (si, st, si, st)
    scale = {"init_temperature": 1 / T_SCALE}
    kl = vlkd_core.build_loss("relation-distill", **scale)
    ce = vlkd_core.build_loss("affinity-mimic", **scale)
    assert run(kl, *same)["loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert run(vlkd_core.build_loss("mobileclip-kd", dist_logit_scale=T_SCALE, **scale), *same)["loss"].item() \
        == pytest.approx(0.0, abs=1e-6)
    assert run(ce, *same)["loss"].item() > 0.1
    data = batch(5)
    grads = []
    for loss in (kl, ce):
        s = data[0].clone().requires_grad_(True)
        run(loss, s, *data[1:])["loss"].backward()
        grads.append(s.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_feature_distill_with_a_projection_to_the_teachers_width():
    loss = vlkd_core.build_loss("feature-distill", widths=WIDTHS)
    assert isinstance(loss.image_proj, torch.nn.Linear) and loss.image_proj.weight.shape == (DT, D)

    def reference(si, st, ti, tt, p):
        return ref.feature_distill(si, st, ti, tt, (p["image_proj.weight"], p["image_proj.bias"]),
                                   (p["text_proj.weight"], p["text_proj.bias"]))
    out = compare(loss, reference, batch(6))
    assert (out["image"] + out["text"]).item() == pytest.approx(out["loss"].item())


def test_feature_distill_without_a_projection_when_widths_agree():
    loss = vlkd_core.build_loss("feature-distill", widths={**WIDTHS, "teacher_model_dim": D})
    assert not list(loss.parameters())
    compare(loss, lambda si, st, ti, tt, p: ref.feature_distill(si, st, ti, tt), batch(7, teacher_dim=D))


@pytest.mark.parametrize("labels", [None, torch.tensor([2, 0, 2, 1, 0])])
def test_interactive_contrast_against_the_teachers_other_modality(labels):
    loss = vlkd_core.build_loss("interactive-contrast", widths=WIDTHS)

    def reference(si, st, ti, tt, p):
        return ref.interactive_contrast(si, st, ti, tt, p["logit_scale"], (p["image_proj.weight"], p["image_proj.bias"]),
                                        (p["text_proj.weight"], p["text_proj.bias"]), labels)
    compare(loss, reference, batch(8), labels=labels)


def test_interactive_contrast_with_distinct_ids_is_the_plain_loss():
    loss = vlkd_core.build_loss("interactive-contrast", widths=WIDTHS)
    si, st, ti, tt = data = batch(9)
    plain = loss(si, st, teacher_image=ti, teacher_text=tt)["loss"]  # no ids: the matching pair only
    assert torch.allclose(plain, run(loss, *data, labels=torch.tensor([7, 3, 9, 0, 4]))["loss"])
    assert not torch.allclose(plain, run(loss, *data, labels=torch.tensor([7, 3, 7, 0, 4]))["loss"])


def test_projections_start_equal_everywhere_and_round_trip_after_a_step():
    a = vlkd_core.build_loss("interactive-contrast", widths=WIDTHS)
    b = vlkd_core.build_loss("interactive-contrast", widths=WIDTHS)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # fixed seed
    assert not torch.equal(a.image_proj.weight, a.text_proj.weight)  # two projections, not one
    data = batch(10)
    run(a, *data)["loss"].backward()
    torch.optim.SGD(a.parameters(), lr=0.5).step()
    fresh = vlkd_core.build_loss("interactive-contrast", widths=WIDTHS)
    assert not torch.equal(fresh.image_proj.weight, a.image_proj.weight)
    fresh.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"logit_scale", "image_proj.weight", "image_proj.bias", "text_proj.weight", "text_proj.bias"}
    assert torch.equal(run(fresh, *data)["loss"], run(a, *data)["loss"])


@pytest.mark.parametrize("name", ["affinity-mimic", "relation-distill", "mobileclip-kd", "interactive-contrast"])
def test_student_scale_is_clamped_after_the_step(name):
    loss = vlkd_core.build_loss(name, init_temperature=0.001, max_logit_scale=20.0,
                                widths=WIDTHS if name == "interactive-contrast" else None)
    assert loss.logit_scale.item() == pytest.approx(math.log(20.0))
    with torch.no_grad():
        loss.logit_scale.fill_(5.0)
    loss.after_optimizer_step()
    assert loss.logit_scale.item() == pytest.approx(math.log(20.0))
    fixed = vlkd_core.build_loss(name, learn_temperature=False, widths=WIDTHS if name == "interactive-contrast" else None)
    assert not fixed.logit_scale.requires_grad and "logit_scale" in fixed.state_dict()


@pytest.mark.parametrize("name, options, option", [
    ("affinity-mimic", {"logit_scale": 0.0}, "logit_scale"),
    ("affinity-mimic", {"init_temperature": -1.0}, "init_temperature"),
    ("relation-distill", {"max_logit_scale": 0.0}, "max_logit_scale"),
    ("mobileclip-kd", {"dist_logit_scale": -5.0}, "dist_logit_scale"),
    ("interactive-contrast", {"init_temperature": 0.0}, "init_temperature"),
])
def test_bad_options_name_the_option(name, options, option):
    widths = WIDTHS if name == "interactive-contrast" else None
    with pytest.raises(UsageError, match=f"loss '{name}': option {option}"):
        vlkd_core.build_loss(name, widths=widths, **options)


def test_widths_come_from_the_engine():
    with pytest.raises(UsageError, match="widths"):
        vlkd_core.build_loss("feature-distill")
    with pytest.raises(UsageError, match="set by the engine"):
        vlkd_core.build_loss("feature-distill", teacher_model_dim=8, widths={"student_dim": 4})


@pytest.mark.parametrize("name", ["affinity-mimic", "feature-distill", "interactive-contrast"])
def test_mismatched_inputs_are_refused_by_name(name):
    loss = vlkd_core.build_loss(name, widths=WIDTHS if name != "affinity-mimic" else None)
    si, st, ti, tt = batch(11)
    with pytest.raises(UsageError, match=f"loss '{name}'"):
        run(loss, si, st[:3], ti, tt)
    if name != "affinity-mimic":
        with pytest.raises(UsageError, match="teacher_model_dim"):
            run(loss, si, st, ti[:, :4], tt[:, :4])
