"""DualEncoder: an image tower and a text tower, each with an optional head.

Evaluators only rely on ``encode_images(list[PIL])`` and ``encode_texts(list[str])``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def to_device(inputs: Any, device: torch.device) -> Any:
    """Move a tensor, or a dict of tensors (HF tokenizers), to ``device``."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict) or hasattr(inputs, "items"):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs


class DualEncoder(nn.Module):
    def __init__(self, image_tower: nn.Module, text_tower: nn.Module,
                 image_head: nn.Module | None = None, text_head: nn.Module | None = None):
        super().__init__()
        self.image_tower, self.text_tower = image_tower, text_tower
        self.image_head = image_head or nn.Identity()
        self.text_head = text_head or nn.Identity()

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_head(self.image_tower(images))

    def encode_text(self, tokens: Any) -> torch.Tensor:
        return self.text_head(self.text_tower(tokens))

    @torch.no_grad()
    def encode_images(self, images: Sequence[Any], batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """PIL images -> [N, D] features with the image tower's eval preprocessing."""
        was_training = self.training
        self.eval()
        out = []
        for i in range(0, len(images), batch_size):
            batch = torch.stack([self.image_tower.preprocess(im, train=False) for im in images[i:i + batch_size]])
            out.append(self.encode_image(batch.to(self.device)).float().cpu())
        self.train(was_training)
        feats = torch.cat(out) if out else torch.empty(0, 0)
        return F.normalize(feats, dim=-1) if normalize else feats

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256, normalize: bool = True) -> torch.Tensor:
        """Strings -> [N, D] features."""
        was_training = self.training
        self.eval()
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.text_tower.preprocess(list(texts[i:i + batch_size]), train=False)
            out.append(self.encode_text(to_device(tokens, self.device)).float().cpu())
        self.train(was_training)
        feats = torch.cat(out) if out else torch.empty(0, 0)
        return F.normalize(feats, dim=-1) if normalize else feats
