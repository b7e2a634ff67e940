"""The training data path on tensors: the core's crop draws torchvision's RandomResizedCrop box
(from a per-sample generator, or the global RNG), its pixels match the PIL pipeline to rounding,
transparency still arrives white, and a seeded sample neither depends on nor moves the global RNG."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from vlkd_core._model.augment_presets import OPENCLIP_SCALE
from vlkd_core._model.images import ImagePreprocess, ImageSpec, _crop_box, train_transform
from vlkd_core.training.data import TrainView, seeded_transform

SPEC = ImageSpec(48)


def picture(width: int = 64, height: int = 56, seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(height, width, 3, generator=gen) * 255).byte().numpy())


@pytest.mark.parametrize("size", [(64, 56), (200, 10), (10, 200)])  # the thin ones take the fallback
@pytest.mark.parametrize("scale", [OPENCLIP_SCALE, (0.08, 1.0)])
def test_crop_box_is_torchvision_s_draw(size, scale):
    image = picture(*size)
    for draw in range(10):
        torch.manual_seed(draw)
        expected = T.RandomResizedCrop.get_params(image, scale, (3 / 4, 4 / 3))
        torch.manual_seed(draw)
        assert _crop_box(size[1], size[0], scale, None) == tuple(expected)


def test_pixels_match_the_pil_pipeline_to_rounding():
    pil = T.Compose([T.RandomResizedCrop(48, scale=OPENCLIP_SCALE, interpolation=SPEC.interpolation,
                                         antialias=True), T.ToTensor(), T.Normalize(SPEC.mean, SPEC.std)])
    ours = train_transform(SPEC)
    std = torch.tensor(SPEC.std)[:, None, None]
    for draw in range(5):
        image = picture(seed=draw)
        torch.manual_seed(draw)
        a = ours(image)
        torch.manual_seed(draw)
        b = pil(image)
        assert a.shape == b.shape == (3, 48, 48)
        assert ((a - b) * std).abs().max() <= 2.5 / 255  # resampling rounds in uint8


def test_transparent_pixels_arrive_white_in_training():
    clear = Image.new("RGBA", (60, 60), (255, 0, 0, 0))
    out = train_transform(SPEC)(clear)
    white = train_transform(SPEC)(Image.new("RGB", (60, 60), (255, 255, 255)))
    assert torch.allclose(out, white, atol=1e-6)


def test_seeded_samples_repeat_differ_and_leave_the_global_rng_alone():
    transform = ImagePreprocess(SPEC)
    image = picture(96, 96)
    before = torch.random.get_rng_state()
    a = seeded_transform(transform, image, True, seed=7)
    torch.manual_seed(123)  # another global state: the sample does not change
    b = seeded_transform(transform, image, True, seed=7)
    c = seeded_transform(transform, image, True, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    view = TrainView([{"image": image, "text": "a red circle"}], transform, seed=0, train=True)
    item = view[0]
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(item["image"], view[0]["image"])


def test_a_tower_s_own_preprocess_is_seeded_through_the_global_rng():
    def own(image, train=False):  # a third-party preprocess drawing from the global RNG
        return torch.rand(3)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    a, b = seeded_transform(own, None, True, 11), seeded_transform(own, None, True, 11)
    assert torch.equal(a, b) and torch.equal(torch.random.get_rng_state(), state)
