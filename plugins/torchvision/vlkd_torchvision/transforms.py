"""What torchvision weights expect of an image (side, normalisation, filter); the transforms
themselves are the core's (``vlkd_core.sdk.ImagePreprocess`` and ``eval_transform``), shared by every image family."""
from __future__ import annotations

from torchvision.transforms import InterpolationMode

from vlkd_core.sdk import ImageSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def spec_from_weights(weights, image_size: int | None) -> ImageSpec:
    """The weights' eval preset (``weights.transforms()``: crop side, mean, std, filter), or the
    ImageNet normalisation at 224 px without weights; ``image_size`` replaces the side."""
    if weights is not None:
        preset = weights.transforms()
        size, mean, std, interp = int(preset.crop_size[0]), tuple(preset.mean), tuple(preset.std), preset.interpolation
    else:
        size, mean, std, interp = 224, IMAGENET_MEAN, IMAGENET_STD, InterpolationMode.BILINEAR
    return ImageSpec(image_size or size, mean, std, interp)
