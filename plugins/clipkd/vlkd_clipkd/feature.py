"""CLIP-KD's feature distillation: the student's embeddings regress onto the teacher's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_core.contracts import LossNeeds

from .common import ToTeacherWidth, check_features, unit


class FeatureDistill(ToTeacherWidth):
    """CLIP-KD's feature distillation, FD (Yang et al., CVPR 2024): mean squared error between the
    student's and the teacher model's L2-normalised embeddings, image and text summed,

        L = MSE(norm(P_I s_I), t̂_I) + MSE(norm(P_T s_T), t̂_T),  MSE = mean over all B·D_t elements,

    where P_I, P_T are learned linear projections (with bias) to the teacher's width when the
    student's width differs (``image_proj`` / ``text_proj``), the identity otherwise.

    Follows ``KDClipLoss``'s ``fd_loss`` (winycg/CLIP-KD ``src/open_clip/loss.py``): the raw
    student embeddings (its model returns them unnormalised when distilling) projected, then
    normalised; the teacher's normalised; ``F.mse_loss`` per modality, summed. CLIP-KD weights it
    by 2000 (``--alpha_fd_loss 2000``): ``--loss "infonce,feature-distill:2000"``.

    Departs: its projections belong to this loss (in CLIP-KD ``interactive-contrast`` uses the same
    two); they start from ``nn.Linear``'s initialisation drawn from a fixed seed, so every rank
    and every fresh loss agree. A per-row mean needs no communication: the mean over ranks is the
    global batch's (CLIP-KD computes it on the gathered batch on every rank, the same value).
    """

    formula = ("MSE(norm(P_I s_I), t̂_I) + MSE(norm(P_T s_T), t̂_T), mean over elements; P = learned linear "
               "projection to the teacher's width when widths differ, else identity")
    paper = "Yang et al. CLIP-KD: An Empirical Study of CLIP Model Distillation. CVPR 2024, arXiv:2307.12732"
    needs = LossNeeds(teacher=False, symmetric=True)
    _name = "feature-distill"

    def __init__(self, student_dim: int, teacher_model_dim: int):
        super().__init__()
        self._init_projections(student_dim, teacher_model_dim)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, teacher_image: torch.Tensor,
                teacher_text: torch.Tensor) -> dict[str, torch.Tensor]:
        check_features(self._name, image_features, text_features, teacher_image, teacher_text)
        image, text = self._projected(image_features, text_features, teacher_image)
        image_loss = F.mse_loss(image, unit(teacher_image.detach()))
        text_loss = F.mse_loss(text, unit(teacher_text.detach()))
        return {"loss": image_loss + text_loss, "image": image_loss.detach(), "text": text_loss.detach()}
