"""--channels-last is a memory layout, not a different model: a run with it trains to the same
weights (to float rounding) as one without, its checkpoint loads anywhere, and auto picks it
for convolution towers only (so the toy tower of the resume tests runs channels-last)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import vlkd_core
from vlkd_core._model.toy import build_toy_backbone
from vlkd_core.training import TrainConfig, Trainer, train
from vlkd_core.training.memory_format import mostly_convolutions, wants_channels_last
from vlkd_core.training.runtime import setup_runtime, teardown_runtime


def _config(tmp_path, name, **overrides) -> TrainConfig:
    base = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
                batch_size=16, epochs=1, max_steps=6, warmup_steps=0, eval=[], progress=False, log_every=1,
                data_options={"size": 32, "length": 96}, output_dir=str(tmp_path), name=name,
                loss="infonce", teacher="none")
    return TrainConfig(**dict(base, **overrides))


def test_auto_means_convolution_towers_only():
    toy = build_toy_backbone("tiny", image_size=32)
    vit_like = nn.Sequential(nn.Conv2d(3, 64, 8, 8), nn.Flatten(), nn.Linear(64 * 16, 512), nn.Linear(512, 512))
    assert mostly_convolutions(toy) and not mostly_convolutions(vit_like)
    assert wants_channels_last("auto", toy, sharded=False)
    assert not wants_channels_last("auto", toy, sharded=True)       # --fsdp shards by storage order
    assert not wants_channels_last("auto", vit_like, sharded=False)
    assert not wants_channels_last("auto", toy, sharded=False, trainable=False)  # a locked teacher
    assert wants_channels_last("on", vit_like, sharded=False) and not wants_channels_last("off", toy, sharded=False)


def test_the_trainer_puts_an_auto_conv_tower_in_channels_last(tmp_path):
    runtime = setup_runtime()
    try:
        trainer = Trainer(_config(tmp_path, "auto"), runtime)
        convs = [m.weight for m in trainer.bundle.tower("image").modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                             for w in convs)
    finally:
        teardown_runtime(runtime)


@pytest.mark.slow
def test_channels_last_trains_the_same_model(tmp_path):
    on = train(_config(tmp_path, "on", channels_last="on"))
    off = train(_config(tmp_path, "off", channels_last="off"))
    assert on["steps"] == off["steps"] == 6
    images = torch.rand(8, 3, 32, 32)
    texts = ["a red circle", "a blue square", "a green triangle"]
    a, b = vlkd_core.load(tmp_path / "on"), vlkd_core.load(tmp_path / "off")
    # the checkpoint was written contiguous and loads into a plain model
    assert all(p.is_contiguous() for p in a.image_tower.parameters())
    torch.testing.assert_close(a.encode_image(images), b.encode_image(images), atol=2e-4, rtol=0)
    torch.testing.assert_close(a.encode_text(texts), b.encode_text(texts), atol=2e-4, rtol=0)
