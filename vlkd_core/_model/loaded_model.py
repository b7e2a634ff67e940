"""LoadedModel: a trained run's two towers and heads, ready to embed images and texts.

What ``vlkd.load(RUN)`` returns: OpenCLIP's ``model.encode_image`` / sentence-transformers'
``encode`` for any composition of plugins, through :mod:`vlkd_core._model.encoding` (the path evaluation
and the feature store take). Inputs go through the towers' eval transforms (``preprocess`` for one
PIL image, ``tokenizer`` for a list of strings); features come back on the model's device,
L2-normalised unless ``normalize=False``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import encoding
from .model import DualEncoder


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
        return encoding.image_transform(self.image_tower)(image)

    def tokenizer(self, texts: Sequence[str] | str) -> Any:
        """Strings -> the text tower's input (a token tensor, or a dict of tensors)."""
        return encoding.tokens(self.text_tower, [texts] if isinstance(texts, str) else texts)

    # -- embeddings (vlkd_core._model.encoding, as evaluation computes them) ----------------------------
    def encode_image(self, images: Any, batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """PIL images (a list, or one), or a preprocessed batch [B, 3, H, W] -> [B, D] features."""
        return encoding.encode_images(self.image_tower, self.image_head, images, batch_size, normalize,
                                      self._device)

    def encode_text(self, texts: Sequence[str] | str, batch_size: int = 256, normalize: bool = True) -> torch.Tensor:
        """Strings (a list, or one) -> [N, D] features."""
        return encoding.encode_texts(self.text_tower, self.text_head, texts, batch_size, normalize, self._device)

    def __repr__(self) -> str:
        return (f"LoadedModel(image={self.config.image!r}, text={self.config.text!r}, "
                f"source='{self.source}', device={str(self._device)!r})")
