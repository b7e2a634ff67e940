"""The --augment presets by name, without torch: a launcher checks a name before any process
imports torchvision (see :mod:`.images` for the transforms they build)."""
from __future__ import annotations

AUGMENT_PRESETS = ("openclip", "imagenet", "none")
OPENCLIP_SCALE = (0.9, 1.0)
IMAGENET_SCALE = (0.08, 1.0)

# preset -> (crop scale, horizontal flip) of its random crop
RANDOM_CROPS: dict[str, tuple[tuple[float, float], bool]] = {
    "openclip": (OPENCLIP_SCALE, False), "imagenet": (IMAGENET_SCALE, True)}

RANDOM_PRESETS = tuple(RANDOM_CROPS)  # the presets that draw a random view
