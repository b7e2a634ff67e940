"""Image preprocessing shared by every image tower: one RGB conversion, one eval transform and
the training augmentation presets.

Families only say what their weights expect (:class:`ImageSpec`: side, mean, std,
interpolation); the augmentation is chosen per run (``--augment``), not per family:

- ``openclip`` (default): ``RandomResizedCrop(scale=(0.9, 1.0))``, no flip, as OpenCLIP and ITRA
  train image-text models. Captions describe the whole image and say "left of": large crops
  would cut away what they describe and flips would contradict them.
- ``imagenet``: classification-style ``RandomResizedCrop(scale=(0.08, 1.0))`` + horizontal flip
  (an explicit opt-in, e.g. for image-only self-supervision).
- ``none``: the eval transform.

The eval transform resizes the shorter side to the crop size and centre-crops (OpenCLIP's
``resize_mode="shortest"``): a square image keeps all of its content, and an image already at the
crop size passes through unchanged apart from normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

AUGMENT_PRESETS = ("openclip", "imagenet", "none")
OPENCLIP_SCALE = (0.9, 1.0)
IMAGENET_SCALE = (0.08, 1.0)


def to_rgb(image):
    """A PIL image as RGB, with transparent pixels composited onto white (as transformers'
    ``convert_to_rgb`` does) instead of PIL's ``convert("RGB")``, which turns them black."""
    from PIL import Image
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha and image.mode not in ("RGBa", "La"):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def interpolation_mode(value) -> InterpolationMode:
    """A family's resampling filter as torchvision's mode: a mode, a name ("bicubic", as
    open_clip and timm write it) or a PIL filter number (as Hugging Face processors store it);
    bicubic when unknown."""
    if isinstance(value, InterpolationMode):
        return value
    if isinstance(value, int):
        from PIL import Image
        value = {Image.NEAREST: "nearest", Image.BILINEAR: "bilinear"}.get(value, "bicubic")
    try:
        return InterpolationMode(str(value).lower())
    except ValueError:
        return InterpolationMode.BICUBIC


@dataclass(frozen=True)
class ImageSpec:
    """What an image tower's weights expect: a square input side, the normalisation and the
    resampling filter."""

    size: int
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: InterpolationMode = InterpolationMode.BICUBIC


def _finish(spec: ImageSpec) -> list:
    return [T.ToTensor(), T.Normalize(spec.mean, spec.std)]


def eval_transform(spec: ImageSpec) -> Callable:
    """RGB, shorter side resized to ``spec.size``, centre crop, tensor, normalise."""
    return T.Compose([to_rgb, T.Resize(spec.size, interpolation=spec.interpolation, antialias=True),
                      T.CenterCrop(spec.size), *_finish(spec)])


def _crop(scale: tuple[float, float], flip: bool) -> Callable[[ImageSpec], list]:
    def build(spec: ImageSpec) -> list:
        crop = [T.RandomResizedCrop(spec.size, scale=scale, interpolation=spec.interpolation, antialias=True)]
        return crop + ([T.RandomHorizontalFlip()] if flip else [])
    return build


# preset -> the random crop (and flip) it applies before the eval transform's final steps
_AUGMENTATIONS: dict[str, Callable[[ImageSpec], list]] = {
    "openclip": _crop(OPENCLIP_SCALE, flip=False), "imagenet": _crop(IMAGENET_SCALE, flip=True)}


def train_transform(spec: ImageSpec, augment: str = "openclip") -> Callable:
    """The training transform of an augmentation preset (see the module docstring)."""
    if augment == "none":
        return eval_transform(spec)
    if augment not in _AUGMENTATIONS:
        from .errors import UsageError
        raise UsageError(f"--augment '{augment}' must be one of {', '.join(AUGMENT_PRESETS)}")
    return T.Compose([to_rgb, *_AUGMENTATIONS[augment](spec), *_finish(spec)])


class ImagePreprocess:
    """``preprocess(image, train=False)``: the eval transform, or with ``train=True`` an
    augmentation preset (``openclip`` unless told otherwise). Image towers use it as their
    ``preprocess``; the engine builds one with the run's ``--augment`` (picklable, so it works
    in DataLoader worker processes)."""

    def __init__(self, spec: ImageSpec, augment: str = "openclip"):
        self.spec, self.augment = spec, augment
        self._train, self._eval = train_transform(spec, augment), eval_transform(spec)

    def __call__(self, image, train: bool = False) -> torch.Tensor:
        return (self._train if train else self._eval)(image)


def training_transform(tower, augment: str) -> Callable:
    """The data loader's transform: the preset on the tower's ``image_spec``; towers that
    declare no spec (third-party ones may not) keep their own ``preprocess``."""
    spec = getattr(tower, "image_spec", None)
    return tower.preprocess if spec is None else ImagePreprocess(spec, augment)
