"""SigLIP on one process against the paper's formula written out pair by pair (value and
gradients of both inputs, the scale and the bias), shared caption ids, initial values, the
after-step clamp, state round trip, options and the contract kit. Cross-rank forms:
test_siglip_distributed.py."""
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
from clip_reference import features, run_with_grads, sigmoid_reference  # noqa: E402

torch.set_num_threads(1)
D = 4  # the features' width (clip_reference.features)


def compare(loss, img, txt, labels=None):
    out, img_grad, txt_grad = run_with_grads(loss, img, txt, labels)
    i2, t2 = img.double().requires_grad_(True), txt.double().requires_grad_(True)
    log_scale = loss.logit_scale.detach().double().clone().requires_grad_(True)
    bias = loss.logit_bias.detach().double().clone().requires_grad_(True)
    ref = sigmoid_reference(i2, t2, log_scale, bias, labels)
    ref.backward()
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(img_grad, i2.grad.float(), atol=1e-6) and torch.allclose(txt_grad, t2.grad.float(), atol=1e-6)
    assert loss.logit_scale.grad.item() == pytest.approx(log_scale.grad.item(), rel=1e-5, abs=1e-7)
    assert loss.logit_bias.grad.item() == pytest.approx(bias.grad.item(), rel=1e-5, abs=1e-7)
    return out


def test_starts_at_the_papers_scale_and_bias():
    loss = vlkd_core.build_loss("siglip")
    assert loss.logit_scale.item() == pytest.approx(math.log(10)) and loss.logit_bias.item() == -10.0
    out = compare(loss, *features(0))
    assert out["logit_scale"].item() == pytest.approx(10.0) and out["logit_bias"].item() == -10.0


@pytest.mark.parametrize("options", [{"init_logit_bias": -1.0}, {"init_logit_scale": 0.5, "init_logit_bias": 2.0}])
def test_matches_the_formula_away_from_the_initial_values(options):
    compare(vlkd_core.build_loss("siglip", **options), *features(1))


def test_shared_caption_ids_are_positives():
    img, txt = features(2)
    labels = torch.tensor([3, 1, 3, 0, 1])
    loss = vlkd_core.build_loss("siglip", init_logit_bias=-1.0)
    out = compare(loss, img, txt, labels)
    assert not torch.allclose(out["loss"], loss(img, txt)["loss"])  # not the plain loss
    distinct = loss(img, txt, labels=torch.tensor([9, 4, 7, 0, 2]))["loss"]
    assert torch.allclose(distinct, loss(img, txt)["loss"])  # distinct ids: exactly the plain loss


def test_scale_is_clamped_after_the_step_not_in_forward():
    cap = 20.0
    loss = vlkd_core.build_loss("siglip", init_logit_scale=math.log(1000), init_logit_bias=0.0, max_logit_scale=cap)
    assert loss.logit_scale.item() == pytest.approx(math.log(cap))  # starts at the cap
    pairs = torch.eye(D)  # positives at cosine 1, negatives at 0: a larger scale lowers the loss
    loss(pairs, pairs.clone())["loss"].backward()
    assert loss.logit_scale.grad < 0  # alive at the cap (a clamp inside forward would make it 0)
    torch.optim.SGD(loss.parameters(), lr=1.0).step()
    assert loss.logit_scale.item() > math.log(cap)
    assert loss.needs.after_step
    loss.after_optimizer_step()
    assert loss.logit_scale.item() == pytest.approx(math.log(cap))


def test_learned_scale_and_bias_round_trip_through_state_dict():
    a = vlkd_core.build_loss("siglip")
    with torch.no_grad():
        a.logit_scale.fill_(1.5)
        a.logit_bias.fill_(-3.0)
    b = vlkd_core.build_loss("siglip")
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"logit_scale", "logit_bias"}
    img, txt = features(5)
    assert torch.equal(a(img, txt)["loss"], b(img, txt)["loss"])


@pytest.mark.parametrize("options, option", [({"dist_impl": "reduce"}, "dist_impl"),
                                             ({"max_logit_scale": 0.0}, "max_logit_scale")])
def test_bad_options_name_the_option(options, option):
    with pytest.raises(UsageError, match=option):
        vlkd_core.build_loss("siglip", **options)


def test_bad_shapes():
    loss = vlkd_core.build_loss("siglip")
    with pytest.raises(UsageError, match="siglip"):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(UsageError, match="labels"):
        loss(torch.randn(4, 3), torch.randn(4, 3), labels=torch.tensor([0, 1]))


def test_contract_kit_and_docs():
    check_loss("siglip")
    cls = vlkd_core.get_component("losses", "siglip").resolve()
    assert cls.formula and "arXiv:2303.15343" in cls.paper and inspect.getdoc(cls)
    assert cls.needs.symmetric and cls.needs.gathers and cls.needs.labels and not cls.needs.teacher


def test_the_engine_calls_it_with_both_towers_and_caption_ids(tmp_path):
    """In a composed run (both towers trainable) the step's siglip value is the formula on the
    towers' features, with repeated captions as positives."""
    from vlkd_core.training import TrainConfig
    from vlkd_core.training.compose import compose
    from vlkd_core.training.data import Batch
    torch.manual_seed(0)
    cfg = TrainConfig(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                      loss="siglip", teacher="none", eval=[], output_dir=str(tmp_path), name="run")
    bundle = compose(cfg).train()
    texts = ["a red circle", "a blue square", "a red circle", "a green star"]
    batch = Batch(torch.randn(4, 3, 32, 32), texts, [str(i) for i in range(4)], torch.full((4,), -1), 0)
    _, logs = bundle(batch)
    with torch.no_grad():
        img = bundle.model.encode_image(batch.images)
        txt = bundle.model.encode_text(bundle.model.text_tower.preprocess(texts))
    want = sigmoid_reference(img.double(), txt.double(), torch.tensor(math.log(10)), torch.tensor(-10.0),
                             torch.tensor([0, 1, 0, 2]))
    assert float(logs["loss/siglip"]) == pytest.approx(want.item(), rel=1e-5)
