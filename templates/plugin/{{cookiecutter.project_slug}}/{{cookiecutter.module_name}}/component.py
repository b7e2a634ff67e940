"""The example {{ cookiecutter.kind }}: replace it with your own."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
{% if cookiecutter.kind == 'loss' %}
from vlkd_core import LossNeeds


class CosineDistillLoss(nn.Module):
    """Mean cosine distance between student and (detached) teacher features."""

    needs = LossNeeds(teacher=True)
    formula = "mean(1 - cos(s, t))"

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        cosine = F.cosine_similarity(student, teacher.detach(), dim=-1)
        return self.scale * (1 - cosine).mean()
{% elif cookiecutter.kind == 'backbone' %}
import zlib

from vlkd_core.sdk import ImagePreprocess, ImageSpec


class TinyImageTower(nn.Module):
    """A two-layer CNN over 32x32 images."""

    modality = "image"

    def __init__(self, output_dim: int = 64):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, output_dim))
        # the core's transforms: say what the weights expect; vlkd train applies --augment
        self.image_spec = ImageSpec(32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        self._preprocess = ImagePreprocess(self.image_spec)

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class TinyTextTower(nn.Module):
    """Hashed bag of words (no vocabulary file needed)."""

    modality = "text"

    def __init__(self, output_dim: int = 64, buckets: int = 4096, max_len: int = 16):
        super().__init__()
        self.output_dim, self.buckets, self.max_len = output_dim, buckets, max_len
        self.embed = nn.EmbeddingBag(buckets + 1, output_dim, mode="mean", padding_idx=0)

    def preprocess(self, texts: list[str], train: bool = False) -> torch.Tensor:
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for row, text in enumerate(texts):
            words = text.lower().split()[: self.max_len]
            for col, word in enumerate(words):
                ids[row, col] = 1 + zlib.crc32(word.encode()) % self.buckets
        return ids

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)


def build_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                   output_dim: int = 64) -> nn.Module:
    tower = TinyImageTower(output_dim) if modality == "image" else TinyTextTower(output_dim)
    if pretrained:  # a local state_dict file saved with torch.save / safetensors
        if pretrained.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(pretrained)
        else:
            state = torch.load(pretrained, map_location="cpu", weights_only=True)
        tower.load_state_dict(state)
    return tower
{% elif cookiecutter.kind == 'head' %}


class ResidualHead(nn.Module):
    """x -> Linear(x) + MLP(x): a projection with a residual non-linear branch."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 256):
        super().__init__()
        self.output_dim = out_dim
        self.linear = nn.Linear(in_dim, out_dim)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.mlp(x)
{% elif cookiecutter.kind == 'dataset' %}
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (240, 220, 40)}


class ColourSwatches(torch.utils.data.Dataset):
    """Solid colour images captioned with their colour (labels = colour index)."""

    def __init__(self, split: str = "train", size: int = 32, length: int = 64):
        self.size, self.length = size, length
        self.classnames = list(COLOURS)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        label = index % len(self.classnames)
        name = self.classnames[label]
        image = Image.new("RGB", (self.size, self.size), COLOURS[name])
        return {"image": image, "text": f"a {name} square", "label": label}
{% elif cookiecutter.kind == 'evaluator' %}


class PairCosine:
    """Mean cosine similarity between each image and its own caption."""

    def __init__(self, dataset: str = "shapes", limit: int = 64, batch_size: int = 32):
        self.dataset, self.limit, self.batch_size = dataset, limit, batch_size

    def evaluate(self, model, dataset=None, **kwargs) -> dict[str, float]:
        import vlkd_core
        data = dataset if dataset is not None else vlkd_core.build_dataset(self.dataset, split="test")
        samples = [data[i] for i in range(min(self.limit, len(data)))]
        with torch.no_grad():
            img = model.encode_images([s["image"] for s in samples], batch_size=self.batch_size)
            txt = model.encode_texts([s["text"] for s in samples], batch_size=self.batch_size)
        return {"pair_cosine": float(F.cosine_similarity(img, txt, dim=-1).mean())}
{% elif cookiecutter.kind == 'recipe' %}


def recipe():
    """The toy towers on 32 px shapes: small and fast. The values apply while a run trains
    these towers on this data (or whenever --recipe names this recipe)."""
    from vlkd_core.training.recipes import Recipe
    return Recipe(job={"image": "toy:tiny", "text": "toy:tiny", "data": "shapes"},
                  values={"image_options": {"image_size": 32}, "data_options": {"size": 32},
                          "lr": 1e-3, "batch_size": 32})
{% elif cookiecutter.kind == 'optimizer' %}


class SignMomentum(torch.optim.Optimizer):
    """Lion-style update (Chen et al. 2023, arXiv:2302.06675): step along the sign of the
    interpolated momentum, with decoupled weight decay.

    vlkd hands the optimizer its parameter groups, each with its own ``lr`` and
    ``weight_decay`` (no decay on norms and biases, per-tower lr); the other arguments are the
    ``--optimizer-option`` keys. Keep all state in tensors: it goes into every checkpoint."""

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(momentum * beta1 + p.grad * (1 - beta1)), alpha=-group["lr"])
                momentum.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return None
{% elif cookiecutter.kind == 'scheduler' %}
import math


def inverse_sqrt(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                 scale: float = 1.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then lr x sqrt(warmup / step) (the Transformer's schedule, Vaswani et al.
    2017). vlkd passes ``warmup_steps`` and ``total_steps`` because the factory declares them;
    ``scale`` is an ``--scheduler-option``. The LambdaLR's state goes into every checkpoint."""
    warmup = max(1, warmup_steps)

    def factor(step: int) -> float:
        return scale * min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
{% elif cookiecutter.kind == 'export-format' %}
from pathlib import Path


class NumpyWeights:
    """``weights.npz``: every floating-point weight of the run (towers and heads), keyed as in
    its ``state_dict``, for ``numpy.load``. It fits every run; a format for one family's towers
    asks each tower instead: ``vlkd_core.sdk.export_part(tower, "NAME")`` is what the tower
    offers it (its ``exports_as`` ability), None or a reason when it does not fit."""

    def fits(self, model) -> str | None:
        return None

    def write(self, model, folder: Path) -> dict:
        import numpy as np
        arrays = {k: v.detach().float().cpu().numpy() for k, v in model.model.state_dict().items()
                  if v.is_floating_point()}
        np.savez(folder / "weights.npz", **arrays)
        return {"files": {"weights": "weights.npz"}, "load": "numpy.load(FOLDER / 'weights.npz')"}
{% endif %}
