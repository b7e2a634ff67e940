"""LossInputs: a loss takes what its forward's parameters name. The classic call keeps every
existing loss's value bit for bit; a loss reading ``inputs`` or named fields gets exactly what
the engine computed; a parameter nothing can fill is refused when the run is composed."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import vlkd_core as vlkd
from vlkd_core.datasets.shapes import ShapesDataset
from vlkd_core.errors import UsageError
from vlkd_core._model.loss_inputs import FIELDS, LossCall
from vlkd_core.training.compose import compose
from vlkd_core.training.config import TrainConfig
from vlkd_core.training.data import Batch
from vlkd_core.training.step import contrastive_ids

TOY = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, eval=[], progress=False)


def batch_of(bundle, n: int = 8) -> Batch:
    data = ShapesDataset(length=n, size=32)
    items = [data[i] for i in range(n)]
    tower = bundle.tower("image")
    images = torch.stack([tower.preprocess(it["image"]) for it in items])
    texts = [it["text"] for it in items[:-2]] + [items[0]["text"]] * 2  # repeated captions: UniCL positives
    return Batch(images, texts, [str(i) for i in range(n)], torch.tensor([it["label"] for it in items]), 0,
                 torch.arange(n) + 100)


def classic(bundle, batch: Batch, name: str) -> torch.Tensor:
    """The call the engine made before LossInputs, written out: heads on towers, the pair by
    role and needs, the teacher detached for distilling losses, labels/indices by the old flags."""
    needs, loss = vlkd.loss_needs(bundle.losses[name]), bundle.losses[name]
    feats = {side: bundle.head(side)(bundle._encode(side, batch, torch.device("cpu"))) for side in ("image", "text")}
    student, teacher = bundle.student or "image", bundle.teacher or "text"
    s, t = feats[student], feats[teacher]
    if needs.second_view:
        side = needs.second_view
        s, t = feats[side], bundle.head(side)(bundle._encode(side, batch, torch.device("cpu")))
    elif needs.prototype_head:
        s, t = bundle.proto_heads[student](s), bundle.proto_heads[teacher](t)
    kwargs = {}
    if needs.labels:
        kwargs["labels"] = contrastive_ids(batch, needs.class_labels)
    if needs.sample_ids:
        kwargs["indices"] = batch.indices
    return vlkd.loss_value(loss(s, t.detach() if bundle.teacher and not needs.symmetric else t, **kwargs))


@pytest.mark.parametrize("loss, extra", [
    ("infonce", {"teacher": "none"}), ("unicl", {"teacher": "none"}),
    ("infonce", {"teacher": "image", "image_head": "linear", "text_head": "linear"}),
    ("seed", {"teacher": "text", "loss_options": {"seed": {"queue_size": 16}}}),
    ("rkd", {"teacher": "text"}), ("vicreg", {"teacher": "text"}),
    ("protocpc", {"teacher": "text", "prototypes": 16}), ("dino", {"teacher": "text", "prototypes": 16}),
    ("simcse", {"teacher": "none", "text_options": {"dropout": 0.1}}),
])
def test_every_classic_loss_keeps_its_value_bit_for_bit(loss, extra):
    torch.manual_seed(0)
    bundle = compose(TrainConfig(**TOY, loss=loss, **extra)).train()
    old = copy.deepcopy(bundle)
    batch = batch_of(bundle)
    torch.manual_seed(1)
    _, logs = bundle(batch)
    torch.manual_seed(1)
    assert torch.equal(logs[f"loss/{loss}"], classic(old, batch, loss))


class ReadsEverything(nn.Module):
    """Reads the whole object and named fields; records what it saw."""

    needs = vlkd.LossNeeds(teacher=True)

    def forward(self, inputs, labels, indices, student_tower_features):
        self.seen = {"inputs": inputs, "labels": labels, "indices": indices, "pre_head": student_tower_features}
        return (inputs.student - inputs.teacher).square().mean() + 0 * student_tower_features.sum()


def test_a_loss_reading_inputs_gets_what_the_engine_computed():
    torch.manual_seed(0)
    bundle = compose(TrainConfig(**TOY, loss="simreg", teacher="text", image_head="linear")).train()
    loss = ReadsEverything()
    bundle.losses["mine"], bundle.weights["mine"] = loss, 1.0
    bundle._calls["mine"] = LossCall(loss, "mine")
    batch = batch_of(bundle)
    bundle(batch)
    inputs, seen = loss.seen["inputs"], loss.seen
    tower_out = bundle.tower("image")(batch.images)
    assert torch.allclose(seen["pre_head"], tower_out) and torch.allclose(inputs.student, bundle.head("image")(tower_out))
    assert not inputs.teacher.requires_grad and inputs.student.requires_grad  # a distilling loss: teacher detached
    assert torch.equal(seen["labels"], contrastive_ids(batch, False)) and torch.equal(seen["indices"], batch.indices)
    assert inputs.texts == batch.texts and inputs.keys == batch.keys
    assert inputs.features("text", head=False) is inputs.teacher_tower_features or \
        torch.equal(inputs.features("text", head=False), inputs.teacher_tower_features)
    with pytest.raises(UsageError, match="--teacher-model"):
        inputs.teacher_image


def test_a_parameter_nothing_can_fill_is_refused_by_name():
    class Wants(nn.Module):
        def forward(self, student, teacher, temperature_schedule):
            return student.sum()

    with pytest.raises(UsageError, match="loss 'wants': forward parameter 'temperature_schedule'"):
        LossCall(Wants(), "wants")
    assert "teacher_image" in FIELDS and "student_tower_features" in FIELDS
