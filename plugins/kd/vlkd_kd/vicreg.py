"""VICReg between student features and constant teacher features (raw, not normalised)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad, all_gather_with_grad
from vlkd_core.errors import UsageError

from .common import check_pair


def _off_diagonal_sq(c: torch.Tensor) -> torch.Tensor:
    return c.pow(2).sum() - torch.diagonal(c).pow(2).sum()


class VICReg(nn.Module):
    """VICReg: invariance (MSE), variance (hinge on the per-dimension std) and covariance
    (squared off-diagonal covariances) terms, on raw features.

    As in the reference implementation the invariance term uses the local batch while the
    variance and covariance statistics use the batch gathered from all ranks (with gradient).
    The teacher terms are constants: they add to the value, not to the gradient.
    """

    formula = ("sim·MSE(s,t) + std·½[mean relu(1−√(Var s+eps)) + mean relu(1−√(Var t+eps))] "
               "+ cov·[Σ_{i≠j}C(s)²_ij/D + Σ_{i≠j}C(t)²_ij/D], C = centred xᵀx/(B−1)")
    paper = ("Bardes, Ponce, LeCun. VICReg: Variance-Invariance-Covariance Regularization for "
             "Self-Supervised Learning. ICLR 2022, arXiv:2105.04906")
    needs = LossNeeds(teacher=True, gathers=True)

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                 eps: float = 1e-4):
        super().__init__()
        self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps = sim_coeff, std_coeff, cov_coeff, eps

    def _std_cov(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, d = x.shape
        if n < 2:
            raise UsageError("loss 'vicreg': needs a batch of at least 2 to estimate variances")
        std = torch.sqrt(x.var(dim=0) + self.eps)
        xc = x - x.mean(dim=0)
        cov = xc.T @ xc / (n - 1)
        return F.relu(1 - std).mean(), _off_diagonal_sq(cov) / d

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(student, teacher, "vicreg")
        s, t = student.float(), teacher.detach().float()
        invariance = F.mse_loss(s, t)
        std_s, cov_s = self._std_cov(all_gather_with_grad(s))
        std_t, cov_t = self._std_cov(all_gather_no_grad(t))
        variance = (std_s + std_t) / 2
        covariance = cov_s + cov_t
        loss = self.sim_coeff * invariance + self.std_coeff * variance + self.cov_coeff * covariance
        return {"loss": loss, "invariance": invariance.detach(), "variance": variance.detach(),
                "covariance": covariance.detach()}
