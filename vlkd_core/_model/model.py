"""DualEncoder: an image tower and a text tower, each with an optional head.

Evaluators only rely on ``encode_images(list[PIL])`` and ``encode_texts(list[str])``; both go
through :mod:`vlkd_core._model.encoding`, the engine's one encode path.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from . import encoding
from .encoding import to_device  # noqa: F401  (re-exported: plugins and benchmarks import it from here)


class DualEncoder(nn.Module):
    def __init__(self, image_tower: nn.Module, text_tower: nn.Module,
                 image_head: nn.Module | None = None, text_head: nn.Module | None = None):
        super().__init__()
        self.image_tower, self.text_tower = image_tower, text_tower
        self.image_head = image_head or nn.Identity()
        self.text_head = text_head or nn.Identity()

    @property
    def device(self) -> torch.device:
        return encoding.device_of(self)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images -> features, in the current mode and grad mode."""
        return encoding.forward(self.image_tower, self.image_head, images)

    def encode_text(self, tokens: Any) -> torch.Tensor:
        """Tokens -> features, in the current mode and grad mode."""
        return encoding.forward(self.text_tower, self.text_head, tokens)

    def encode_images(self, images: Sequence[Any], batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """PIL images -> [N, D] features on the CPU with the image tower's eval preprocessing."""
        return encoding.encode_images(self.image_tower, self.image_head, images, batch_size, normalize,
                                      self.device, torch.device("cpu"))

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256, normalize: bool = True) -> torch.Tensor:
        """Strings -> [N, D] features on the CPU."""
        return encoding.encode_texts(self.text_tower, self.text_head, texts, batch_size, normalize,
                                     self.device, torch.device("cpu"))
