"""Train / eval image transforms for torchvision towers, at the weights' own sizes."""
from __future__ import annotations

from dataclasses import dataclass

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TransformSpec:
    crop_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: InterpolationMode = InterpolationMode.BILINEAR


def spec_from_weights(weights, image_size: int | None) -> TransformSpec:
    """The weights' eval preset (``weights.transforms()``), or the standard ImageNet one
    (resize 256 / crop 224) without weights; ``image_size`` rescales the crop and keeps the
    weights' resize/crop ratio."""
    if weights is not None:
        preset = weights.transforms()
        crop, resize = int(preset.crop_size[0]), int(preset.resize_size[0])
        mean, std, interp = tuple(preset.mean), tuple(preset.std), preset.interpolation
    else:
        crop, resize, mean, std, interp = 224, 256, IMAGENET_MEAN, IMAGENET_STD, InterpolationMode.BILINEAR
    if image_size is not None:
        resize, crop = max(image_size, round(image_size * resize / crop)), image_size
    return TransformSpec(crop, resize, mean, std, interp)


def eval_transform(spec: TransformSpec) -> T.Compose:
    return T.Compose([T.Resize(spec.resize_size, interpolation=spec.interpolation, antialias=True),
                      T.CenterCrop(spec.crop_size), T.ToTensor(), T.Normalize(spec.mean, spec.std)])


def train_transform(spec: TransformSpec) -> T.Compose:
    """Standard ImageNet training augmentation at the eval crop size."""
    return T.Compose([T.RandomResizedCrop(spec.crop_size, interpolation=spec.interpolation, antialias=True),
                      T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(spec.mean, spec.std)])
