"""SimReg: regression between L2-normalised student and (constant) teacher features."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds

from .common import check_pair, unit

_PAPER = ("Navaneet, Koohpayegani, Tejankar, Pirsiavash. SimReg: Regression as a Simple Yet "
          "Effective Tool for Self-supervised Knowledge Distillation. BMVC 2021, arXiv:2201.05131")


class SimReg(nn.Module):
    """SimReg: mean squared error between the L2-normalised student and teacher features
    (mean over all elements). The teacher is a constant (detached)."""

    formula = "mean((ŝ − t̂)²), x̂ = x/‖x‖"
    paper = _PAPER
    needs = LossNeeds(teacher=True)
    _name = "simreg"

    def _distance(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(s, t)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        check_pair(student, teacher, self._name)
        return self._distance(unit(student), unit(teacher.detach()))


class SimRegL1(SimReg):
    """SimReg with an L1 regression: mean absolute error between normalised features."""

    formula = "mean(|ŝ − t̂|)"
    _name = "simreg-l1"

    def _distance(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(s, t)


class SimRegSmoothL1(SimReg):
    """SimReg with a smooth-L1 (Huber, beta=1) regression between normalised features."""

    formula = "mean(smoothL1_β=1(ŝ − t̂))"
    _name = "simreg-smoothl1"

    def _distance(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(s, t, beta=1.0)
