"""The teacher tower of a run trained from a feature store: a parameter-free stand-in with the
stored width, so the real tower is not built (nor its weights read) for training.

Evaluation still needs a real tower on that side (zero-shot encodes class prompts, retrieval
encodes captions): the first ``forward`` or ``preprocess`` call builds it, locked, outside the
module tree, so it never enters a checkpoint. The data loader's image transform comes from the
stored ``image_spec`` and needs no tower.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .._model.images import ImageSpec, interpolation_mode


def image_spec_of(info: dict[str, Any] | None) -> ImageSpec | None:
    if not info:
        return None
    return ImageSpec(int(info["size"]), tuple(info["mean"]), tuple(info["std"]),
                     interpolation_mode(info["interpolation"]))


class StoredTower(nn.Module):
    def __init__(self, modality: str, output_dim: int, build: Callable[[], nn.Module],
                 image_spec: ImageSpec | None = None):
        super().__init__()
        self.modality, self.output_dim = modality, output_dim
        if image_spec is not None:
            self.image_spec = image_spec
        self.__dict__["_build"] = build            # plain attributes: not modules, not in state_dict
        self.__dict__["_live"] = None
        self.register_buffer("_device", torch.zeros(0), persistent=False)  # follows .to(device)

    def live(self) -> nn.Module:
        """The real tower, built on first use (evaluation), locked and in eval mode."""
        if self._live is None:
            from .._model.freeze import lock
            tower = lock(self._build()).eval()
            self.__dict__["_live"] = tower
        return self._live.to(self._device.device)

    def preprocess(self, inputs: Any, train: bool = False) -> Any:
        return self.live().preprocess(inputs, train=train)

    def forward(self, inputs: Any) -> torch.Tensor:
        with torch.no_grad():
            return self.live()(inputs)
