"""The model names of the family: torchvision's classification models."""
from __future__ import annotations


def list_models() -> list[str]:
    """Every classification model of ``torchvision.models`` (no detection/segmentation/video)."""
    import torchvision
    return sorted(torchvision.models.list_models(module=torchvision.models))
