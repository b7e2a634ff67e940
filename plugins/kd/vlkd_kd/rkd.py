"""Relational Knowledge Distillation (distance-wise and angle-wise), per the reference code."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds

from .common import check_pair


def pairwise_distances(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances [B, B] with an exact zero diagonal (clamped before the sqrt so the
    gradient stays finite)."""
    sq = x.pow(2).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))


def normalised_distances(x: torch.Tensor) -> torch.Tensor:
    d = pairwise_distances(x)
    positive = d[d > 0]
    return d / positive.mean() if positive.numel() else d  # a batch of one has no pairs


def angles(x: torch.Tensor) -> torch.Tensor:
    """Cosines of the angle at j between i and k, for every triple: [B·B·B]."""
    diff = F.normalize(x[None, :, :] - x[:, None, :], p=2, dim=2)  # diff[j, i] = x_i − x_j
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


class RKD(nn.Module):
    """Relational KD: match the batch's pairwise distances (normalised by their mean) and its
    triplet angles between student and teacher with a smooth-L1 loss. Each side is compared only
    with itself, so student and teacher widths may differ. Relations use the local batch."""

    formula = ("w_d·smoothL1(ψ_D(s), ψ_D(t)) + w_a·smoothL1(ψ_A(s), ψ_A(t)); ψ_D = ‖x_i−x_j‖/mean, "
               "ψ_A = cos∠(x_i−x_j, x_k−x_j)")
    paper = "Park, Kim, Lu, Cho. Relational Knowledge Distillation. CVPR 2019, arXiv:1904.05068"
    needs = LossNeeds(teacher=True, same_dim=False)

    def __init__(self, distance_weight: float = 1.0, angle_weight: float = 2.0):
        super().__init__()
        self.distance_weight, self.angle_weight = distance_weight, angle_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(student, teacher, "rkd", same_dim=False)
        s, t = student.float(), teacher.detach().float()
        distance = F.smooth_l1_loss(normalised_distances(s), normalised_distances(t), beta=1.0)
        angle = F.smooth_l1_loss(angles(s), angles(t), beta=1.0)
        loss = self.distance_weight * distance + self.angle_weight * angle
        return {"loss": loss, "distance": distance.detach(), "angle": angle.detach()}
