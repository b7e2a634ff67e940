"""Barlow Twins between student features and constant teacher features (raw, not normalised)."""
from __future__ import annotations

import torch
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_reduce_sum, world_size

from .common import check_pair

BN_EPS = 1e-5  # nn.BatchNorm1d's default, as in the reference implementation


def standardise(x: torch.Tensor, n: int) -> torch.Tensor:
    """Per-dimension standardisation over the global batch of ``n`` rows (BatchNorm without
    affine in training mode: biased variance, eps 1e-5); statistics are summed over ranks."""
    mean = all_reduce_sum(x.sum(dim=0)) / n
    var = all_reduce_sum((x - mean).pow(2).sum(dim=0)) / n
    return (x - mean) / torch.sqrt(var + BN_EPS)


class BarlowTwins(nn.Module):
    """Barlow Twins: drive the cross-correlation matrix of batch-standardised student and teacher
    features to the identity. Statistics and the correlation matrix are summed over ranks (with
    gradient), so every rank sees the loss of the global batch."""

    formula = "z = BN(x); c = z_sᵀz_t / B; Σ_i(1−c_ii)² + λ Σ_{i≠j} c_ij²"
    paper = ("Zbontar, Jing, Misra, LeCun, Deny. Barlow Twins: Self-Supervised Learning via "
             "Redundancy Reduction. ICML 2021, arXiv:2103.03230")
    needs = LossNeeds(teacher=True, gathers=True)

    def __init__(self, lambd: float = 0.0051):
        super().__init__()
        self.lambd = lambd

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(student, teacher, "barlowtwins")
        n = student.shape[0] * world_size()  # equal per-rank batches, as DDP training uses
        zs = standardise(student.float(), n)
        zt = standardise(teacher.detach().float(), n)
        c = all_reduce_sum(zs.T @ zt) / n
        diag = torch.diagonal(c)
        on_diag = (1 - diag).pow(2).sum()
        off_diag = c.pow(2).sum() - diag.pow(2).sum()
        return {"loss": on_diag + self.lambd * off_diag, "on_diag": on_diag.detach(),
                "off_diag": off_diag.detach()}
