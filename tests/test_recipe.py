"""The training recipe's semantics: transparency on load, augmentation presets, prototypes shared
by teacher and student, InfoNCE's after-step clamp, UniCL ids per row."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

import vlkd_core as vlkd
from vlkd_core._model.augment_presets import AUGMENT_PRESETS
from vlkd_core._model.images import ImageSpec, eval_transform, to_rgb, train_transform
from vlkd_core.training import TrainConfig, train
from vlkd_core.training.data import Batch
from vlkd_core.training.restore import load_run
from vlkd_core.training.step import caption_ids, contrastive_ids
from train_helpers import read_jsonl


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    base = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                batch_size=16, epochs=1, max_steps=4, warmup_steps=1, eval=[], progress=False,
                data_options={"size": 32, "length": 64}, output_dir=str(tmp_path), name="run")
    return TrainConfig(**dict(base, **overrides))


# transparency -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_to_rgb_composites_transparency_onto_white(mode):
    image = Image.new("RGBA", (4, 4), (200, 0, 0, 0)).convert(mode)
    assert set(to_rgb(image).get_flattened_data()) == {(255, 255, 255)}
    half = Image.new("RGBA", (2, 2), (0, 0, 0, 128))  # half-transparent black over white: grey
    assert to_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    opaque = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(opaque) is opaque


def test_every_loader_delivers_transparent_pixels_white(tmp_path):
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    (tmp_path / "train.csv").write_text("filepath,title\nclear.png,a clear picture\n")
    dataset = vlkd.build_dataset("csv", path=str(tmp_path / "train.csv"))
    assert set(dataset[0]["image"].get_flattened_data()) == {(255, 255, 255)}
    (tmp_path / "folder" / "clear").mkdir(parents=True)
    Image.new("LA", (8, 8), (0, 0)).save(tmp_path / "folder" / "clear" / "a.png")
    folder = vlkd.build_dataset("imagefolder", root=str(tmp_path / "folder"))
    assert set(folder[0]["image"].get_flattened_data()) == {(255, 255, 255)}


# augmentation presets -----------------------------------------------------------------------

def test_presets_and_the_default():
    assert AUGMENT_PRESETS == ("openclip", "imagenet", "none") and TrainConfig().augment == "openclip"
    spec = ImageSpec(16, (0.5,) * 3, (0.5,) * 3)
    image = Image.fromarray((torch.rand(16, 16, 3) * 255).byte().numpy())
    assert torch.equal(train_transform(spec, "none")(image), eval_transform(spec)(image))
    with pytest.raises(vlkd.UsageError, match="--augment 'flip'"):
        train_transform(spec, "flip")


def test_imagenet_preset_is_an_explicit_opt_in_that_flips(tmp_path):
    """The counterpart of the contract check: the opt-in preset does flip and crop small."""
    from vlkd_core.testing import _crop_box
    tower = vlkd.build_backbone("toy:tiny", modality="image", image_size=32)
    from vlkd_core._model.images import training_transform
    ramp = torch.arange(256, dtype=torch.uint8)
    source = Image.fromarray(torch.stack([ramp.expand(256, 256), ramp[:, None].expand(256, 256),
                                          torch.zeros(256, 256, dtype=torch.uint8)], -1).numpy())
    seen = []
    for draw in range(30):
        torch.manual_seed(draw)
        seen.append(_crop_box(training_transform(tower, "imagenet")(source, train=True), tower.image_spec))
    assert any(not stays for _, _, stays in seen) and min(area for area, _, _ in seen) < 0.5


def test_eval_transform_keeps_a_square_image_whole():
    """A larger square image is resized, not cropped: its border survives."""
    spec = ImageSpec(32, (0.0,) * 3, (1.0,) * 3)
    image = Image.new("RGB", (128, 128), (255, 255, 255))
    for x in range(128):  # a red frame, 4 px wide, at the very border
        for y in list(range(4)) + list(range(124, 128)):
            image.putpixel((x, y), (255, 0, 0))
            image.putpixel((y, x), (255, 0, 0))
    out = eval_transform(spec)(image)
    assert out[1, 0, :].max() < 0.2 and out[1, :, 0].max() < 0.2  # the frame is still there


@pytest.mark.slow
def test_the_run_uses_its_augment_option(tmp_path):
    """The loader's transform follows --augment: with `none` every draw equals the eval
    transform; with `openclip` draws differ; and the option reaches a real run."""
    from vlkd_core._model.images import training_transform
    tower = vlkd.build_backbone("toy:tiny", modality="image", image_size=32)
    image = Image.fromarray((torch.rand(40, 40, 3) * 255).byte().numpy())
    plain, crops = [], []
    for draw in range(4):
        torch.manual_seed(draw)
        plain.append(training_transform(tower, "none")(image, train=True))
        crops.append(training_transform(tower, "openclip")(image, train=True))
    assert all(torch.equal(x, tower.preprocess(image)) for x in plain)
    assert not all(torch.equal(x, crops[0]) for x in crops[1:])
    none = train(tiny_config(tmp_path, name="none", augment="none"))
    crop = train(tiny_config(tmp_path, name="crop", augment="openclip"))
    assert none["final_loss"] != crop["final_loss"]


# shared prototypes --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("loss", ["protocpc", "dino"])
def test_teacher_and_student_score_against_the_same_prototypes(tmp_path, loss):
    cfg = tiny_config(tmp_path, loss=loss, teacher="text", image_head="linear", prototypes=16)
    from vlkd_core.training.compose import compose
    torch.manual_seed(0)
    before = compose(cfg).proto_heads
    train(cfg)
    heads = load_run(tmp_path / "run").bundle.proto_heads
    student, teacher = heads["image"].last_layer, heads["text"].last_layer
    assert torch.equal(student.weight, teacher.weight)  # identical vectors after training steps
    assert not torch.equal(student.weight, before["image"].last_layer.weight)  # and they learned
    # the teacher's own projection stays as it was built (frozen)
    for (name, p), (_, q) in zip(heads["text"].mlp.named_parameters(), before["text"].mlp.named_parameters()):
        assert torch.equal(p, q), name


def test_the_prototype_layer_trains_through_the_student_only(tmp_path):
    from vlkd_core.training.compose import compose
    comp = compose(tiny_config(tmp_path, loss="protocpc", teacher="text", image_head="linear",
                               prototypes=16))
    student, teacher = comp.proto_heads["image"], comp.proto_heads["text"]
    assert teacher.last_layer is student.last_layer
    assert not any(p.requires_grad for p in teacher.mlp.parameters())
    assert any(p.requires_grad for p in student.last_layer.parameters())


# InfoNCE temperature ------------------------------------------------------------------------

@pytest.mark.slow
def test_engine_clamps_the_logit_scale_after_each_step(tmp_path):
    """At a low cap the scale first dips, then training pushes it up against the cap: it must be
    held there by the after-step clamp (without it, the logged scale would pass the cap)."""
    cap = 1.5
    cfg = tiny_config(tmp_path, teacher="none", lr=0.01, max_steps=12, log_every=1,
                      loss_options={"infonce": {"init_temperature": 1 / cap, "max_logit_scale": cap}})
    train(cfg)
    scales = [r["infonce/logit_scale"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")
              if r["type"] == "train"]
    assert len(scales) == 12 and min(scales) < cap - 0.01  # the scale trains
    assert max(scales) <= cap + 1e-5
    assert scales[-1] == pytest.approx(cap)  # pushed up by the last steps, held at the cap
    final = load_run(tmp_path / "run").bundle.losses["infonce"].logit_scale
    assert final.item() <= math.log(cap) + 1e-6


@pytest.mark.slow
def test_a_third_party_loss_gets_its_after_step_call(tmp_path, plugin_env):
    """Through a real entry point: LossNeeds(after_step=True) is the whole contract."""
    plugin_env("vlkd-counting", "vlkd_counting", "counting", """
        import torch
        from torch import nn
        from vlkd_core import hookimpl
        from vlkd_core.contracts import LossNeeds

        class CountingLoss(nn.Module):
            needs = LossNeeds(teacher=False, symmetric=True, after_step=True)

            def __init__(self):
                super().__init__()
                self.register_buffer("calls", torch.zeros((), dtype=torch.long))

            def forward(self, s, t):
                return (s - t).square().mean()

            def after_optimizer_step(self):
                self.calls += 1

        @hookimpl
        def vlkd_register_losses(register):
            register("counting", CountingLoss)
    """)
    vlkd.reset_plugin_manager()
    train(tiny_config(tmp_path, loss="counting", teacher="none", max_steps=3))
    assert int(load_run(tmp_path / "run").bundle.losses["counting"].calls) == 3


# UniCL ids ----------------------------------------------------------------------------------

def test_mixed_batch_keeps_class_positives_and_caption_positives():
    texts = ["a cat", "a photo", "a dog", "a photo", "a cat", "a bird"]
    labels = torch.tensor([0, -1, 0, -1, 1, -1])
    batch = Batch(torch.zeros(6, 3, 2, 2), texts, [str(i) for i in range(6)], labels, 0)
    ids = contrastive_ids(batch, class_labels=True)
    assert ids[0] == ids[2]               # same class, different captions: positives
    assert ids[0] != ids[4]               # same caption, different classes: the class decides
    assert ids[1] == ids[3]               # unlabelled rows: identical captions are positives
    assert ids[5] != ids[1] and ids[1] not in (ids[0], ids[4])
    # losses that ask only for caption ids get exactly those
    assert torch.equal(contrastive_ids(batch, class_labels=False), caption_ids(texts))
    # UniCL on these ids: rows 0 and 2 are positives with identical targets, so swapping their
    # images leaves the loss unchanged; with caption ids they are negatives and it changes
    unicl = vlkd.build_loss("unicl")
    images, texts_f = torch.randn(6, 8), torch.randn(6, 8)
    swapped = images.clone()
    swapped[[0, 2]] = images[[2, 0]]
    assert torch.allclose(unicl(images, texts_f, labels=ids)["loss"],
                          unicl(swapped, texts_f, labels=ids)["loss"], atol=1e-6)
    captions = contrastive_ids(batch, class_labels=False)
    assert not torch.allclose(unicl(images, texts_f, labels=captions)["loss"],
                              unicl(swapped, texts_f, labels=captions)["loss"], atol=1e-6)
