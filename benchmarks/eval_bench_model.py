"""A small OpenCLIP CLIP for benchmarks/eval_vs_clip_benchmark.py, saved as a ``local-dir:``
folder (``open_clip_config.json`` + ``open_clip_model.safetensors``), which open_clip,
CLIP_benchmark's open_clip loader and vlkd's ``openclip:local-dir:DIR`` all load.

No weights can be downloaded here, so the model starts random and is optionally trained for a
few steps (CLIP loss on Fashion-MNIST class captions and on captioned shapes) so the scores are
not all at chance; the comparison does not depend on it.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# A ViT with 8x8 patches at 32 px and a 3-layer text transformer (~8M parameters, mostly the
# token embedding): the forward passes are cheap, so each tool's own overhead shows.
SIZES = {
    "small": {"embed_dim": 128, "vision_cfg": {"image_size": 32, "layers": 3, "width": 128, "patch_size": 8},
              "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 3}},
    "tiny": {"embed_dim": 32, "vision_cfg": {"image_size": 16, "layers": 1, "width": 64, "patch_size": 8},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}},
}


def _pairs(fashion_images: np.ndarray, fashion_labels: np.ndarray, classnames, templates, scenes, rng):
    """One training batch source: (PIL image, caption) pairs from both data kinds."""
    from PIL import Image
    out = []
    for i in rng.sample(range(len(fashion_labels)), min(len(fashion_labels), 2048)):
        name = classnames[int(fashion_labels[i])]
        out.append((Image.fromarray(fashion_images[i]).convert("RGB"), rng.choice(templates).format(c=name)))
    out += scenes
    rng.shuffle(out)
    return out


def train_briefly(model, preprocess, tokenizer, pairs, steps: int, batch_size: int = 64, lr: float = 1e-3) -> None:
    """Plain CLIP InfoNCE for ``steps`` steps; identical captions in a batch count as positives."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    model.train()
    for step in range(steps):
        batch = [pairs[(step * batch_size + k) % len(pairs)] for k in range(batch_size)]
        images = torch.stack([preprocess(im) for im, _ in batch])
        texts = [t for _, t in batch]
        same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float)
        target = same / same.sum(1, keepdim=True)
        img, txt, scale = model(images, tokenizer(texts))
        logits = scale * img @ txt.T
        loss = (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                + torch.sum(-target * F.log_softmax(logits.T, 1), 1).mean()) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def make_model(folder: Path, size: str = "small", train_steps: int = 0, train_data=None, seed: int = 0) -> Path:
    """Create (and optionally briefly train) the model, save it as a local-dir folder.

    ``train_data``: (fashion_images, fashion_labels, classnames, templates, scene pairs)."""
    import open_clip
    from safetensors.torch import save_file
    torch.manual_seed(seed)
    cfg = json.loads(json.dumps(SIZES[size]))
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                                                   "interpolation": "bicubic", "resize_mode": "shortest"}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    if train_steps and train_data is not None:
        images, labels, classnames, templates, scenes = train_data
        pairs = _pairs(images, labels, classnames, templates, scenes, random.Random(seed))
        train_briefly(model, preprocess, open_clip.get_tokenizer(f"local-dir:{folder}"), pairs, train_steps)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder
