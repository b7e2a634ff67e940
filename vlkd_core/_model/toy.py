"""The builtin ``toy`` backbone family: tiny towers with no downloads and no vocabulary files,
for tests, tutorials and contract checks of other components."""
from __future__ import annotations

import zlib

import torch
from torch import nn
from torchvision.transforms import InterpolationMode

from .images import ImagePreprocess, ImageSpec


TOY_MODELS = ["tiny", "small"]
WIDTHS = {"tiny": 16, "small": 32}


class ToyImageTower(nn.Module):
    """Three strided convolutions and global average pooling."""

    modality = "image"

    def __init__(self, width: int, output_dim: int, image_size: int):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.GroupNorm(1, width), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.GroupNorm(1, 2 * width), nn.GELU(),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, output_dim))
        self.image_spec = ImageSpec(image_size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
                                    InterpolationMode.BILINEAR)
        self._preprocess = ImagePreprocess(self.image_spec)

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    # depth for --layer-decay: the three conv stages are layers 1-3, the projection is the top
    num_layers = 4

    def layer_id(self, name: str) -> int:
        index = int(name.split(".")[1])  # net.<index>.weight
        return 1 + (index >= 3) + (index >= 6) + (index >= 10)


class ToyTextTower(nn.Module):
    """Hashed word and word-bigram embeddings, mean-pooled, then an MLP (no depth map: it has
    no layers worth decaying, so --layer-decay refuses it while it trains)."""

    modality = "text"

    def __init__(self, width: int, output_dim: int, buckets: int = 8192, max_len: int = 32,
                 dropout: float = 0.0):
        super().__init__()
        self.output_dim, self.buckets, self.max_len = output_dim, buckets, max_len
        self.embed = nn.EmbeddingBag(buckets + 1, 8 * width, mode="mean", padding_idx=0)
        self.drop = nn.Dropout(dropout)  # no parameters: state_dict keys unchanged
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(8 * width, output_dim))

    @property
    def context_length(self) -> int:
        return self.max_len

    def preprocess(self, texts: list[str], train: bool = False) -> torch.Tensor:
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for row, text in enumerate(texts):
            words = text.lower().replace(".", " ").split()
            grams = words + [a + "_" + b for a, b in zip(words, words[1:])]
            for col, gram in enumerate(grams[: self.max_len]):
                ids[row, col] = 1 + zlib.crc32(gram.encode()) % self.buckets
        return ids

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.drop(self.embed(ids)))


def build_toy_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                       output_dim: int = 64, image_size: int = 32, dropout: float = 0.0) -> nn.Module:
    """``dropout`` (text tower): before its last layer, so two train-mode passes differ."""
    width = WIDTHS[model]
    tower = (ToyImageTower(width, output_dim, image_size) if modality == "image"
             else ToyTextTower(width, output_dim, dropout=dropout))
    if pretrained:
        from .._runfiles.weights import load_state_dict_file
        tower.load_state_dict(load_state_dict_file(pretrained))
    return tower
