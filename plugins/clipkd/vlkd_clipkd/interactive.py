"""CLIP-KD's interactive contrastive learning: each student modality contrasts with the other
modality of the teacher."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_clip.infonce import soft_targets
from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad, rank
from vlkd_core.errors import UsageError

from .common import StudentScale, ToTeacherWidth, check_features, unit


class InteractiveContrast(ToTeacherWidth, StudentScale):
    """CLIP-KD's interactive contrastive learning, ICL (Yang et al., CVPR 2024): InfoNCE of the
    student's image embeddings against the teacher model's text embeddings, and of the student's
    text against the teacher's images,

        L = ½[CE(σ norm(P_I s_I) t̂_Tᵀ, diag) + CE(σ norm(P_T s_T) t̂_Iᵀ, diag)],

    P_I, P_T learned projections to the teacher's width when widths differ (as
    ``feature-distill``), σ = exp(learnable log-scale), 1/``init_temperature`` at the start.

    Follows ``KDClipLoss``'s ``icl_loss`` (winycg/CLIP-KD ``src/open_clip/loss.py``): projected,
    normalised student embeddings against the normalised teacher's, cross-entropy to the matching
    pair, the two directions averaged, a scale of its own (``cross_logit_scale``).

    Departs: σ is exp of the parameter, clamped to ≤ ``max_logit_scale`` after each step, as CLIP's
    scale; CLIP-KD multiplies by its parameter itself (initialised to ln(1/0.07) ≈ 2.66, so a
    temperature of ≈ 0.38, never clamped) — ``init_temperature=0.376`` starts where it starts. Its
    projections are this loss's own (CLIP-KD shares them with FD). Across ranks: this rank's
    student rows against the teacher's columns of every rank (gathered without gradient: the
    teacher is constant), so the mean over ranks is the global batch's loss and gradient (CLIP-KD:
    the global matrix on every rank, 1/W of the gradient after DDP averaging). ``labels=``
    (caption ids) make pairs sharing a caption positives with UniCL soft targets, as vlkd's
    ``infonce``; with distinct ids it is the loss above.
    """

    formula = ("½[CE(σ norm(P_I s_I) t̂_Tᵀ, diag) + CE(σ norm(P_T s_T) t̂_Iᵀ, diag)], σ = exp(learnable "
               "log-scale); P = learned projection to the teacher's width when widths differ")
    paper = "Yang et al. CLIP-KD: An Empirical Study of CLIP Model Distillation. CVPR 2024, arXiv:2307.12732"
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, after_step=True)
    _name = "interactive-contrast"

    def __init__(self, student_dim: int, teacher_model_dim: int, init_temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0):
        super().__init__()
        self._init_projections(student_dim, teacher_model_dim)
        self._init_scale(self._name, init_temperature, learn_temperature, max_logit_scale)

    def _targets(self, labels: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """The matching pair's global column, or UniCL soft targets over every rank's ids."""
        if labels is None:
            return torch.arange(batch, device=device) + rank() * batch
        labels = torch.as_tensor(labels, device=device).long()
        if labels.shape != (batch,):
            raise UsageError(f"loss '{self._name}': labels must be [B]={batch} ids, got shape {tuple(labels.shape)}")
        return soft_targets(labels, all_gather_no_grad(labels))

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, teacher_image: torch.Tensor,
                teacher_text: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_features(self._name, image_features, text_features, teacher_image, teacher_text)
        image, text = self._projected(image_features, text_features, teacher_image)
        all_t_image = all_gather_no_grad(unit(teacher_image.detach()))
        all_t_text = all_gather_no_grad(unit(teacher_text.detach()))
        target, scale = self._targets(labels, image.shape[0], image.device), self.scale()
        loss = (F.cross_entropy(scale * image @ all_t_text.T, target)
                + F.cross_entropy(scale * text @ all_t_image.T, target)) / 2
        return {"loss": loss, "logit_scale": scale.detach()}
