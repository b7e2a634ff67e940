"""The student learns the teacher's image-text similarity distributions over the batch: TinyCLIP's
affinity mimicking, CLIP-KD's relation distillation and MobileCLIP's KD term.

All three score, in both directions, this rank's rows against the columns of every rank: the
student's embeddings gathered with gradient, the teacher model's without (local-loss form, so the
mean over ranks of the per-rank losses is the loss of the global batch, and so are the gradients).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad, all_gather_with_grad

from .common import StudentScale, both_ways, check_features, positive, teacher_scale, unit


def cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """−1/B Σ_i Σ_j softmax(teacher)_ij log softmax(student)_ij."""
    return -(teacher_logits.softmax(dim=1) * student_logits.log_softmax(dim=1)).sum(dim=1).mean()


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """1/B Σ_i KL(softmax(teacher)_i ‖ softmax(student)_i)."""
    return F.kl_div(student_logits.log_softmax(dim=1), teacher_logits.log_softmax(dim=1),
                    log_target=True, reduction="batchmean")


class SimilarityKD(StudentScale):
    """½[D(P_t^{I→T}, P_s^{I→T}) + D(P_t^{T→I}, P_s^{T→I})], P^{I→T} = row softmax of σ x̂_I x̂_Tᵀ."""

    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, after_step=True)
    _name = "similarity-kd"
    _fixed_teacher_scale: float | None = None

    def _divergence(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return kl_divergence(student_logits, teacher_logits)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, teacher_image: torch.Tensor,
                teacher_text: torch.Tensor, teacher_logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        check_features(self._name, image_features, text_features, teacher_image, teacher_text)
        scale = self.scale()
        student = both_ways(unit(image_features), unit(text_features), scale, all_gather_with_grad)
        t_scale = teacher_scale(self._fixed_teacher_scale, teacher_logit_scale, image_features)
        teacher = both_ways(unit(teacher_image.detach()), unit(teacher_text.detach()), t_scale, all_gather_no_grad)
        loss = (self._divergence(student[0], teacher[0]) + self._divergence(student[1], teacher[1])) / 2
        return {"loss": loss, "logit_scale": scale.detach(), "teacher_logit_scale": t_scale}


class AffinityMimic(SimilarityKD):
    """TinyCLIP's affinity mimicking (Wu et al., ICCV 2023): the student's image-to-text and
    text-to-image affinity distributions over the batch learn the teacher's,

        L = ½[CE(A_t^{I2T}, A_s^{I2T}) + CE(A_t^{T2I}, A_s^{T2I})],
        A^{I2T} = softmax_row(σ x̂_I x̂_Tᵀ), A^{T2I} = softmax_row(σ x̂_T x̂_Iᵀ),
        CE(P, Q) = −1/B Σ_i Σ_j P_ij log Q_ij,

    the student's embeddings at its σ_s, the teacher model's at σ_t, all L2-normalised.

    Follows TinyCLIP's ``ClipSoftLoss`` (wkcn/TinyCLIP ``src/open_clip/clip_soft_loss.py``,
    ``src/training/train.py``): normalised embeddings, cross-entropy to soft targets (not KL: the
    value includes the teacher's entropy, the gradient is the same), mean over rows, the two
    directions averaged, this rank's rows against all-gathered columns (its recipes run
    ``--local-loss --gather-with-grad``, the form vlkd uses).

    Departs: σ_s is this loss's own parameter (1/``init_temperature``, learnable, clamped to
    ≤ ``max_logit_scale`` after each step); in TinyCLIP it is the student CLIP's logit scale,
    shared with its CLIP loss. σ_t is the teacher model's σ (TinyCLIP's
    ``teacher_model.logit_scale.exp()``); ``logit_scale`` fixes σ_s and σ_t to one value, as
    TinyCLIP's ``--logit-scale`` does (its released weight-inheritance scripts use 50).
    """

    formula = ("½[CE(A_t^{I2T}, A_s^{I2T}) + CE(A_t^{T2I}, A_s^{T2I})], A^{I2T} = softmax_row(σ x̂_I x̂_Tᵀ), "
               "CE(P, Q) = −1/B Σ_ij P_ij log Q_ij; student at its learnable σ_s, teacher at its own σ_t")
    paper = ("Wu et al. TinyCLIP: CLIP Distillation via Affinity Mimicking and Weight Inheritance. "
             "ICCV 2023, arXiv:2309.12314")
    _name = "affinity-mimic"

    def __init__(self, logit_scale: float | None = None, init_temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0):
        super().__init__()
        if logit_scale is not None:  # TinyCLIP's --logit-scale: both scales fixed
            self._fixed_teacher_scale = positive(logit_scale, "logit_scale", self._name)
            init_temperature, learn_temperature = 1.0 / logit_scale, False
            max_logit_scale = max(max_logit_scale, logit_scale)
        self._init_scale(self._name, init_temperature, learn_temperature, max_logit_scale)

    def _divergence(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return cross_entropy(student_logits, teacher_logits)


class RelationDistill(SimilarityKD):
    """CLIP-KD's relation distillation, CRD in the paper (Yang et al., CVPR 2024): KL
    divergence from the teacher's to the student's image-text similarity distributions,

        L = ½[KL(P_t^{I→T} ‖ P_s^{I→T}) + KL(P_t^{T→I} ‖ P_s^{T→I})],
        P^{I→T} = softmax_row(σ x̂_I x̂_Tᵀ), KL averaged over rows (batchmean),

    the student at its σ_s, the teacher model at its own σ_t, all L2-normalised.

    Follows ``KDClipLoss`` (winycg/CLIP-KD ``src/open_clip/loss.py``, its ``ckd_loss``):
    ``DistillKL`` at T = 1 with ``batchmean``, both directions averaged, the teacher's logits at
    its own logit scale.

    Departs: σ_s is this loss's own parameter (1/``init_temperature``, learnable, clamped after
    each step); in CLIP-KD it is the student CLIP's logit scale, shared with the task loss.
    Across ranks CLIP-KD builds the global matrix on every rank from features gathered without
    gradient but the local slice (its scripts set neither ``--local-loss`` nor
    ``--gather-with-grad``), which gives 1/W of the global loss's gradient after DDP's averaging;
    vlkd's local rows against columns gathered with gradient give the same value and the full
    gradient.
    """

    formula = ("½[KL(P_t^{I→T} ‖ P_s^{I→T}) + KL(P_t^{T→I} ‖ P_s^{T→I})], P^{I→T} = softmax_row(σ x̂_I x̂_Tᵀ), "
               "batch mean; student at its learnable σ_s, teacher at its own σ_t")
    paper = "Yang et al. CLIP-KD: An Empirical Study of CLIP Model Distillation. CVPR 2024, arXiv:2307.12732"
    _name = "relation-distill"

    def __init__(self, init_temperature: float = 0.07, learn_temperature: bool = True,
                 max_logit_scale: float = 100.0):
        super().__init__()
        self._init_scale(self._name, init_temperature, learn_temperature, max_logit_scale)


class MobileCLIPKD(SimilarityKD):
    """MobileCLIP's distillation term (Vasu et al., CVPR 2024, L_Distill): KL divergence from
    the teacher's similarity-matrix softmaxes, at a fixed teacher scale λ_t, to the student's,

        L = ½[KL(S_t^{I→T} ‖ S_s^{I→T}) + KL(S_t^{T→I} ‖ S_s^{T→I})],
        S_t^{I→T} = softmax_row(λ_t t̂_I t̂_Tᵀ), S_s^{I→T} = softmax_row(σ_s ŝ_I ŝ_Tᵀ), batch mean,

    with λ_t = ``dist_logit_scale`` (100, the value of MobileCLIP's DataCompDR training configs,
    ``--distill-logit-scale 100``; ``None`` takes the teacher model's σ). The paper mixes it with
    the CLIP loss, (1 − λ) L_CLIP + λ L_Distill, which is vlkd's weighted sum:
    ``--loss "infonce:0.3,mobileclip-kd:0.7"``.

    Follows ``DistillClipLoss.dist_loss`` of apple/ml-mobileclip ``training/open_clip_v1.patch``:
    the teacher's softmax against the student's log-softmax, summed over columns, mean over rows,
    the two directions averaged, the teacher at the fixed ``--distill-logit-scale``, this rank's
    rows against all-gathered columns (its configs run ``--local-loss --gather-with-grad``).

    Departs: the KL, as the paper writes it, where the code takes the cross-entropy (the same
    gradient; the value lacks the teacher's entropy, so a student equal to its teacher scores 0);
    one teacher, where MobileCLIP averages the softmaxes of an ensemble of two
    (``--distill-average-after-softmax``); the synthetic-caption term of dataset reinforcement
    (``DRClipLoss`` adds this loss again on synthetic captions) is not part of it; σ_s is this
    loss's own parameter (1/``init_temperature``, learnable, clamped after each step), where
    MobileCLIP uses the student CLIP's logit scale, shared with its CLIP loss.
    """

    formula = ("½[KL(S_t^{I→T} ‖ S_s^{I→T}) + KL(S_t^{T→I} ‖ S_s^{T→I})], S_t = softmax_row(λ_t t̂_I t̂_Tᵀ), "
               "S_s = softmax_row(σ_s ŝ_I ŝ_Tᵀ), batch mean; λ_t = dist_logit_scale")
    paper = ("Vasu et al. MobileCLIP: Fast Image-Text Models through Multi-Modal Reinforced Training. "
             "CVPR 2024, arXiv:2311.17049")
    _name = "mobileclip-kd"

    def __init__(self, dist_logit_scale: float | None = 100.0, init_temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0):
        super().__init__()
        if dist_logit_scale is not None:
            self._fixed_teacher_scale = positive(dist_logit_scale, "dist_logit_scale", self._name)
        self._init_scale(self._name, init_temperature, learn_temperature, max_logit_scale)
