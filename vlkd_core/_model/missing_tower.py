"""A stand-in for a tower the user did not give (``vlkd eval --image SPEC`` without ``--text``):
image-only evaluators (linear probe, k-NN, clustering) never touch it; any evaluator that reads
text stops with one line naming the flag that supplies the tower."""
from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import UsageError


class MissingTower(nn.Module):
    output_dim = 0

    def __init__(self, modality: str, flag: str):
        super().__init__()
        self.modality, self.flag = modality, flag

    def _refuse(self) -> UsageError:
        return UsageError(f"this evaluator needs a {self.modality} tower: pass {self.flag} SPEC "
                          f"(image-only evaluators such as linear-probe and knn do not)")

    def preprocess(self, inputs: Any, train: bool = False) -> Any:
        raise self._refuse()

    def forward(self, inputs: Any) -> Any:
        raise self._refuse()
