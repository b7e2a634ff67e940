"""Tiny trained runs for the load/export tests, trained in this process (a few steps each):
toy towers, a tiny OpenCLIP model loaded as ``local-dir:``, a tiny BERT and a tiny
sentence-transformers folder (all written offline, as the plugins' own tests do)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

# the openclip plugin's tiny model (plugins/openclip/tests/conftest.py); the hf ones: vlkd_hf.testing
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
TEXTS = ["a small red circle", "large blue square above a green triangle", "the cat sits on the mat",
         "stock market crashed"]


def train_run(root: Path, name: str, **options) -> Path:
    """Train ``name`` for two steps on generated shapes; returns the run directory."""
    from vlkd_core.training import TrainConfig, train
    cfg = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, teacher="none",
               loss="infonce", data="shapes", data_options={"size": 32, "length": 32}, batch_size=16,
               epochs=1, max_steps=2, warmup_steps=1, progress=False, eval=[], output_dir=str(root),
               name=name)
    cfg.update(options)
    train(TrainConfig(**cfg))
    return root / name


def images(count: int = 5) -> list:
    """Small RGB images of different sizes and colours (no transparency)."""
    from PIL import Image, ImageDraw
    out = []
    for i in range(count):
        image = Image.new("RGB", (40 + 7 * i, 36), (30 * i, 200 - 20 * i, 90))
        ImageDraw.Draw(image).ellipse((5, 5, 20 + 3 * i, 25), fill=(250, 250, 10 * i))
        out.append(image)
    return out


def tiny_clip_dir(root: Path) -> Path:
    """An OpenCLIP folder (open_clip_config.json + weights) that ``local-dir:`` loads."""
    import open_clip
    from safetensors.torch import save_file
    root.mkdir()
    (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{root}", pretrained_text=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "open_clip_model.safetensors"))
    return root
