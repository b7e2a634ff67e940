"""LoadedModel: a trained run's two towers and heads, ready to embed images and texts.

What ``vlkd.load(RUN)`` returns: OpenCLIP's ``model.encode_image`` / sentence-transformers'
``encode`` for any composition of plugins. Inputs go through the towers' own eval transforms
(``preprocess`` for one PIL image, ``tokenizer`` for a list of strings); features come back on the
model's device, L2-normalised unless ``normalize=False``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model import DualEncoder, to_device


class LoadedModel:
    """``model``: the run's :class:`DualEncoder` (eval mode); ``config``: its resolved TrainConfig;
    ``source``: the checkpoint or export folder it was read from."""

    def __init__(self, model: DualEncoder, config: Any, source: Path, device: str | torch.device = "cpu"):
        self.model = model.eval()
        self.config, self.source = config, Path(source)
        self.to(device)

    # -- parts -------------------------------------------------------------------------------
    @property
    def image_tower(self) -> nn.Module:
        return self.model.image_tower

    @property
    def text_tower(self) -> nn.Module:
        return self.model.text_tower

    @property
    def image_head(self) -> nn.Module:
        return self.model.image_head

    @property
    def text_head(self) -> nn.Module:
        return self.model.text_head

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: str | torch.device) -> "LoadedModel":
        self._device = torch.device(device)
        self.model.to(self._device)
        return self

    # -- the towers' own input transforms ------------------------------------------------------
    def preprocess(self, image: Any) -> torch.Tensor:
        """One PIL image -> the image tower's eval input tensor [3, H, W]."""
        return self.image_tower.preprocess(image, train=False)

    def tokenizer(self, texts: Sequence[str] | str) -> Any:
        """Strings -> the text tower's input (a token tensor, or a dict of tensors)."""
        return self.text_tower.preprocess([texts] if isinstance(texts, str) else list(texts), train=False)

    # -- embeddings --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, images: Any, batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """PIL images (a list, or one), or a preprocessed batch [B, 3, H, W] -> [B, D] features."""
        batches = _image_batches(images, batch_size, self.preprocess)
        out = [self.model.encode_image(batch.to(self._device)) for batch in batches]
        return _finish(out, normalize, self._device)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str] | str, batch_size: int = 256, normalize: bool = True) -> torch.Tensor:
        """Strings (a list, or one) -> [N, D] features."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = [self.model.encode_text(to_device(self.tokenizer(texts[i:i + batch_size]), self._device))
               for i in range(0, len(texts), batch_size)]
        return _finish(out, normalize, self._device)

    def __repr__(self) -> str:
        return (f"LoadedModel(image={self.config.image!r}, text={self.config.text!r}, "
                f"source='{self.source}', device={str(self._device)!r})")


def _image_batches(images: Any, batch_size: int, preprocess) -> list[torch.Tensor]:
    """Split a tensor batch, or preprocess and stack PIL images / [3, H, W] tensors, in batches."""
    if isinstance(images, torch.Tensor):
        batch = images.unsqueeze(0) if images.dim() == 3 else images
        return list(batch.split(batch_size))
    if not isinstance(images, (list, tuple)):
        images = [images]
    items = [im if isinstance(im, torch.Tensor) else preprocess(im) for im in images]
    return [torch.stack(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]


def _finish(parts: list[torch.Tensor], normalize: bool, device: torch.device) -> torch.Tensor:
    feats = torch.cat(parts).float() if parts else torch.empty(0, 0, device=device)
    return F.normalize(feats, dim=-1) if normalize and feats.numel() else feats
