"""Image towers: Hugging Face vision models (ViT, CLIPVision, DINOv2, ConvNeXt, ...) with
their AutoImageProcessor."""
from __future__ import annotations

import torch
from torch import nn

from vlkd_core.sdk import DepthFromBlocks, ImagePreprocess, ImageSpec, interpolation_mode

from .checkpointing import set_grad_checkpointing
from .depth import HF_DEPTH
from .formats import HF_FORMAT
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


def spec_from_processor(processor) -> ImageSpec:
    """Side, normalisation and filter of a Hugging Face image processor (the transforms are the
    core's, so every image family augments and converts transparency the same way)."""
    mean = getattr(processor, "image_mean", None) or (0.5, 0.5, 0.5)
    std = getattr(processor, "image_std", None) or (0.5, 0.5, 0.5)
    return ImageSpec(processor_size(processor), tuple(mean), tuple(std),
                     interpolation_mode(getattr(processor, "resample", None)))


class HFImageTower(DepthFromBlocks, nn.Module):
    """A vision model with the core image transforms at its image processor's settings."""

    modality = "image"
    DEPTH_PATTERNS = HF_DEPTH  # --layer-decay

    def __init__(self, model: nn.Module, processor, pooler: str, projection: nn.Module | None = None,
                 image_size: int | None = None, interpolate_pos_encoding: bool = False):
        super().__init__()
        self.model, self.processor, self.pooler = model, processor, pooler
        self.projection = projection
        self.interpolate_pos_encoding = interpolate_pos_encoding
        if image_size is not None:
            set_processor_size(processor, image_size)
        self.image_spec = spec_from_processor(processor)
        self.image_size = self.image_spec.size
        self._preprocess = ImagePreprocess(self.image_spec)
        self.output_dim = self._measure_output_dim()

    @torch.no_grad()
    def _measure_output_dim(self) -> int:
        was_training = self.training
        self.eval()
        out = self(torch.zeros(1, 3, self.image_size, self.image_size))
        self.train(was_training)
        return int(out.shape[-1])

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: transformers' own gradient checkpointing."""
        set_grad_checkpointing(self.model, enable)

    def exports_as(self, format: str) -> nn.Module | None:
        """ExportsAs: this tower (model + image processor) for the ``hf`` format."""
        return self if format == HF_FORMAT else None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        kwargs = {"interpolate_pos_encoding": True} if self.interpolate_pos_encoding else {}
        features = pool(self.model(pixel_values=pixel_values, **kwargs), self.pooler)
        return self.projection(features) if self.projection is not None else features
