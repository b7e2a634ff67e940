"""The contract kit over every registered component (timm-style): a component is tested the
moment it registers. Each one either builds from its defaults (or its registered ``example``
options) and passes the kit, or refuses with a one-line VlkdError (e.g. a dataset that needs a
root folder) — never another exception."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import vlkd_core
from vlkd_core import testing
from vlkd_core.errors import VlkdError

_PM = vlkd_core.get_plugin_manager()


def names(kind: str) -> list[str]:
    return [c.name for c in _PM.registry(kind)]


def example(kind: str, name: str) -> dict:
    return dict(vlkd_core.get_component(kind, name).metadata.get("example") or {})


def build_or_refuse(build):
    try:
        return build()
    except VlkdError as exc:
        assert "\n" not in str(exc).strip(), "errors must be one line"
        pytest.skip(f"refuses without files: {exc}")


@pytest.mark.parametrize("name", names("losses"))
def test_every_loss(name):
    options = example("losses", name)
    # check_loss hands its width to both sides, as the engine hands the towers' widths
    testing.check_loss(lambda **widths: vlkd_core.build_loss(name, widths=widths, **options), name=name)


class _Centred(torch.nn.Module):
    """A tiny stateful loss: MSE to the teacher minus a running centre of width teacher_dim
    (or, with ``lazy``, a centre allocated at the first call, which the kit must refuse)."""

    needs = vlkd_core.LossNeeds(teacher=True)

    def __init__(self, teacher_dim: int = 0, lazy: bool = False):
        super().__init__()
        self.register_buffer("center", torch.zeros(1, 0 if lazy else teacher_dim))

    def forward(self, student, teacher):
        if self.center.shape[1] == 0:
            self.center = torch.zeros(1, teacher.shape[1])
        loss = (student - (teacher.detach() - self.center)).square().mean()
        self.center = 0.9 * self.center + 0.1 * teacher.detach().mean(0, keepdim=True)
        return loss


def test_check_loss_gives_its_width_to_a_maker_that_takes_it():
    seen = []

    def make(teacher_dim):
        seen.append(teacher_dim)
        return _Centred(teacher_dim)
    testing.check_loss(make, dim=12)
    assert seen and set(seen) == {12}


def test_check_loss_refuses_state_allocated_at_the_first_call():
    with pytest.raises(AssertionError, match="allocate it at its final shape"):
        testing.check_loss(lambda: _Centred(lazy=True), dim=12)


@pytest.mark.parametrize("name", names("heads"))
def test_every_head(name):
    options = {"in_dim": 16, "out_dim": 8, **example("heads", name)}
    testing.check_head(lambda: vlkd_core.build_head(name, **options), options["in_dim"], options["out_dim"], name=name)


@pytest.mark.parametrize("family", [n for n in names("backbones") if example("backbones", n)])
@pytest.mark.parametrize("modality", ["image", "text"])
def test_every_backbone_family_with_an_example(family, modality):
    options = example("backbones", family)
    spec = f"{family}:{options.pop('model')}"
    try:
        tower = vlkd_core.build_backbone(spec, modality=modality, **options)
    except vlkd_core.UsageError as exc:  # an image-only family asked for text: a clean refusal
        assert modality in str(exc) and "\n" not in str(exc)
        return
    testing.check_backbone(tower, name=spec)


def test_families_without_example_are_tested_by_their_plugin():
    for family in names("backbones"):
        if not example("backbones", family):
            plugin = vlkd_core.get_component("backbones", family).plugin
            assert plugin not in ("builtin-backbones",), f"builtin family {family} needs an example"


@pytest.mark.parametrize("name", names("datasets"))
def test_every_dataset(name):
    dataset = build_or_refuse(lambda: vlkd_core.build_dataset(name, **example("datasets", name)))
    testing.check_dataset(dataset, name=name)


@pytest.fixture(scope="module")
def toy_model():
    return testing.toy_dual_encoder()


@pytest.fixture(scope="module")
def small_shapes():
    return vlkd_core.build_dataset("shapes", split="test", size=16, length=40, two_shapes=0.0)


@pytest.mark.parametrize("name", names("evaluators"))
def test_every_evaluator(name, toy_model, small_shapes):
    evaluator = build_or_refuse(lambda: vlkd_core.build_evaluator(name, **example("evaluators", name)))
    build_or_refuse(lambda: testing.check_evaluator(evaluator, toy_model, name=name, dataset=small_shapes))


@pytest.mark.parametrize("name", names("recipes"))
def test_every_recipe(name):
    testing.check_recipe(name)


@pytest.mark.parametrize("name", names("optimizers"))
def test_every_optimizer(name):
    testing.check_optimizer(name)


@pytest.mark.parametrize("name", names("schedulers"))
def test_every_scheduler(name):
    testing.check_scheduler(name)


def test_the_kit_catches_an_optimizer_wrongly_declaring_per_parameter():
    """LAMB clips the global gradient norm: one instance per parameter is not the same step."""
    comp = vlkd_core.get_component("optimizers", "lamb")
    honest = comp.info
    comp.info = dataclasses.replace(honest, per_parameter=True)
    try:
        with pytest.raises(AssertionError, match="declares per_parameter, but one instance per parameter differs"):
            testing.check_optimizer("lamb")
    finally:
        comp.info = honest
