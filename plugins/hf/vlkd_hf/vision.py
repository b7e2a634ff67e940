"""Image towers: Hugging Face vision models (ViT, CLIPVision, DINOv2, ConvNeXt, ...) with
their AutoImageProcessor."""
from __future__ import annotations

import torch
from torch import nn
from torchvision import transforms as T

from .pooling import pool


def processor_size(processor) -> int:
    """The square input side the processor produces (crop size, else resize size)."""
    for attr in ("crop_size", "size"):
        size = getattr(processor, attr, None)
        if isinstance(size, dict):
            for key in ("height", "shortest_edge", "width"):
                if size.get(key):
                    return int(size[key])
        elif isinstance(size, int):
            return size
    return 224


def set_processor_size(processor, image_size: int) -> None:
    """Make the processor produce ``image_size`` x ``image_size`` inputs."""
    if isinstance(getattr(processor, "size", None), dict):
        processor.size = ({"shortest_edge": image_size} if "shortest_edge" in processor.size
                          else {"height": image_size, "width": image_size})
    if isinstance(getattr(processor, "crop_size", None), dict):
        processor.crop_size = {"height": image_size, "width": image_size}


class HFImageTower(nn.Module):
    """A vision model + its image processor. Training adds RandomResizedCrop and a flip
    (processors only implement the eval pipeline)."""

    modality = "image"

    def __init__(self, model: nn.Module, processor, pooler: str, projection: nn.Module | None = None,
                 image_size: int | None = None, interpolate_pos_encoding: bool = False):
        super().__init__()
        self.model, self.processor, self.pooler = model, processor, pooler
        self.projection = projection
        self.interpolate_pos_encoding = interpolate_pos_encoding
        if image_size is not None:
            set_processor_size(processor, image_size)
        self.image_size = processor_size(processor)
        self._augment = T.Compose([T.RandomResizedCrop(self.image_size, scale=(0.5, 1.0)),
                                   T.RandomHorizontalFlip()])
        self.output_dim = self._measure_output_dim()

    @torch.no_grad()
    def _measure_output_dim(self) -> int:
        was_training = self.training
        self.eval()
        out = self(torch.zeros(1, 3, self.image_size, self.image_size))
        self.train(was_training)
        return int(out.shape[-1])

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        image = image.convert("RGB")
        if train:
            image = self._augment(image)
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        kwargs = {"interpolate_pos_encoding": True} if self.interpolate_pos_encoding else {}
        features = pool(self.model(pixel_values=pixel_values, **kwargs), self.pooler)
        return self.projection(features) if self.projection is not None else features
