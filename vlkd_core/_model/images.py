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

from .abilities import HasImageSpec
from .augment_presets import AUGMENT_PRESETS, RANDOM_CROPS


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


class RandomCropTransform:
    """A training preset's transform, on tensors: RGB (transparency onto white), uint8 tensor,
    random resized crop (and flip), float, normalise. Torchvision's crop-parameter draw, from
    ``generator`` when given (the loader seeds one per sample, which is much cheaper than
    forking the global RNG), else from the global RNG. Working on the uint8 tensor instead of the
    PIL image makes a 64 px sample ~3x and a 224 px sample ~3.5x cheaper."""

    def __init__(self, spec: ImageSpec, scale: tuple[float, float], flip: bool):
        self.spec, self.scale, self.flip = spec, scale, flip

    def __call__(self, image, generator: torch.Generator | None = None) -> torch.Tensor:
        x = as_uint8(image)
        return render(x, *self.draw(x, generator), self.spec)

    def draw(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[tuple[int, int, int, int], bool]:
        """The random part: a crop box (top, left, h, w) and whether to flip."""
        box = _crop_box(x.shape[-2], x.shape[-1], self.scale, generator)
        return box, bool(self.flip and torch.rand(1, generator=generator).item() < 0.5)


def as_uint8(image) -> torch.Tensor:
    """A PIL image (transparency onto white) as a uint8 [3, H, W] tensor; a tensor as it is."""
    from torchvision.transforms.v2 import functional as F
    return F.pil_to_tensor(to_rgb(image)) if not isinstance(image, torch.Tensor) else image


def render(x: torch.Tensor, box: tuple[int, int, int, int], flip: bool, spec: ImageSpec) -> torch.Tensor:
    """The crop ``box`` of ``x`` resized to ``spec``'s side with its filter, flipped if asked,
    as float normalised with ``spec``'s mean and std."""
    from torchvision.transforms.v2 import functional as F
    top, left, h, w = box
    x = F.resized_crop(x, top, left, h, w, [spec.size, spec.size], spec.interpolation, antialias=True)
    if flip:
        x = x.flip(-1)
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
    return F.normalize(x, list(spec.mean), list(spec.std))


def _crop_box(height: int, width: int, scale: tuple[float, float],
              generator: torch.Generator | None) -> tuple[int, int, int, int]:
    """``T.RandomResizedCrop.get_params`` (ratio 3/4-4/3) drawing from ``generator``."""
    area, log_ratio = height * width, torch.log(torch.tensor((3 / 4, 4 / 3)))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w, h = int(round((target * ratio) ** 0.5)), int(round((target / ratio) ** 0.5))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,), generator=generator).item()
            left = torch.randint(0, width - w + 1, size=(1,), generator=generator).item()
            return top, left, h, w
    ratio, w, h = width / height, width, height  # fallback: the centre at a ratio within bounds
    if ratio < 3 / 4:
        h = int(round(w / (3 / 4)))
    elif ratio > 4 / 3:
        w = int(round(h * (4 / 3)))
    return (height - h) // 2, (width - w) // 2, h, w


def train_transform(spec: ImageSpec, augment: str = "openclip") -> Callable:
    """The training transform of an augmentation preset (see the module docstring)."""
    if augment == "none":
        return eval_transform(spec)
    if augment not in RANDOM_CROPS:
        from ..errors import UsageError
        raise UsageError(f"--augment '{augment}' must be one of {', '.join(AUGMENT_PRESETS)}")
    scale, flip = RANDOM_CROPS[augment]
    return RandomCropTransform(spec, scale, flip)


class ImagePreprocess:
    """``preprocess(image, train=False)``: the eval transform, or with ``train=True`` an
    augmentation preset (``openclip`` unless told otherwise). Image towers use it as their
    ``preprocess``; the engine builds one with the run's ``--augment`` (picklable, so it works
    in DataLoader worker processes)."""

    def __init__(self, spec: ImageSpec, augment: str = "openclip"):
        self.spec, self.augment = spec, augment
        self._train, self._eval = train_transform(spec, augment), eval_transform(spec)

    def __call__(self, image, train: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """``generator``: where a training crop draws its randomness (default: the global RNG)."""
        if train and isinstance(self._train, RandomCropTransform):
            return self._train(image, generator=generator)
        return (self._train if train else self._eval)(image)


class PairedViews:
    """The student's and a teacher model's input of one image from ONE random draw: the same crop
    box and flip, each rendered at its own tower's side, filter and normalisation (so the teacher
    embeds exactly the view the student learns from). Returns ``(student, teacher)``."""

    def __init__(self, student: ImageSpec, teacher: ImageSpec, augment: str = "openclip"):
        self.specs, self.augment = (student, teacher), augment
        self._crop = train_transform(student, augment)
        self._evals = tuple(eval_transform(spec) for spec in self.specs)

    def __call__(self, image, train: bool = False, generator: torch.Generator | None = None):
        if train and isinstance(self._crop, RandomCropTransform):
            x = as_uint8(image)
            box, flip = self._crop.draw(x, generator)
            return tuple(render(x, box, flip, spec) for spec in self.specs)
        return tuple(view(image) for view in self._evals)


def training_transform(tower, augment: str) -> Callable:
    """The data loader's transform: the preset on the tower's ``image_spec``; towers that
    declare no spec (third-party ones may not) keep their own ``preprocess``."""
    return ImagePreprocess(tower.image_spec, augment) if isinstance(tower, HasImageSpec) else tower.preprocess



def describe_image_transforms(tower, augment: str) -> dict:
    """The input side, filter, normalisation and the training / eval transforms an image
    tower's inputs get, in words (what ``vlkd train`` says at start)."""
    spec = tower.image_spec if isinstance(tower, HasImageSpec) else None
    if spec is None:
        return {"size": None, "train": "the tower's own preprocess", "eval": "the tower's own preprocess"}
    info = {"size": spec.size, "filter": spec.interpolation.value,
            "mean": [round(m, 4) for m in spec.mean], "std": [round(s, 4) for s in spec.std],
            "eval": "shorter side resized, centre crop", "train": "as eval"}
    if augment in RANDOM_CROPS:
        scale, flip = RANDOM_CROPS[augment]
        info["train"] = f"random resized crop scale={scale}, {'horizontal flip' if flip else 'no flip'}"
    return info
