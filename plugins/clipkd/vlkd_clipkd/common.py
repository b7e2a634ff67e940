"""What the CLIP-distillation losses share: input checks, the student's learnable scale, the
teacher's scale, similarity logits across ranks and the learned projection to the teacher's width."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.errors import UsageError

PROJECTION_SEEDS = {"image": 0, "text": 1}  # private seeds of the projections' initial weights


def unit(x: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 normalisation in float32 (features may arrive in bf16/fp16 under AMP; the
    teacher model's arrive raw)."""
    return F.normalize(x.float(), dim=1)


def positive(value: float, option: str, loss: str) -> float:
    if not value > 0:
        raise UsageError(f"loss '{loss}': option {option} must be > 0, got {value}")
    return float(value)


def check_features(loss: str, image: torch.Tensor, text: torch.Tensor, teacher_image: torch.Tensor,
                   teacher_text: torch.Tensor) -> None:
    """Student image and text [B, D], the teacher model's image and text [B, D_t], one B."""
    shapes = {"image_features": image.shape, "text_features": text.shape,
              "teacher_image": teacher_image.shape, "teacher_text": teacher_text.shape}
    if any(len(s) != 2 for s in shapes.values()) or image.shape != text.shape \
            or teacher_image.shape != teacher_text.shape or image.shape[0] != teacher_image.shape[0]:
        said = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise UsageError(f"loss '{loss}': expects student image/text [B, D] and teacher image/text [B, D_t], got {said}")


def both_ways(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
              gather: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(image→text, text→image) logits σ·x̂ŷᵀ of this rank's rows against every rank's columns
    (local-loss form: the mean over ranks of a row-mean is the global batch's)."""
    return scale * image @ gather(text).T, scale * text @ gather(image).T


class StudentScale(nn.Module):
    """The student's σ = exp(log-scale) for one loss, learnable unless fixed, clamped in place to
    ≤ max_logit_scale after each optimizer step (as ``infonce``; the references clamp the
    student CLIP's scale to [0, ln 100] the same way). Each vlkd loss owns its scale: in the
    references the student's CLIP scale is one parameter shared with the CLIP loss."""

    def _init_scale(self, loss: str, init_temperature: float, learn_temperature: bool,
                    max_logit_scale: float) -> None:
        positive(init_temperature, "init_temperature", loss)
        self.max_logit_scale = positive(max_logit_scale, "max_logit_scale", loss)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)),
                                        requires_grad=bool(learn_temperature))
        self.after_optimizer_step()

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        self.logit_scale.clamp_(max=math.log(self.max_logit_scale))


def teacher_scale(fixed: float | None, given: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """The teacher's σ: a fixed value when the loss sets one, else the teacher model's (detached)."""
    value = fixed if fixed is not None else given
    return torch.as_tensor(value, dtype=torch.float32, device=like.device).detach()


def projection(in_dim: int, out_dim: int, loss: str, seed: int) -> nn.Module:
    """CLIP-KD's learned projection of the student's embeddings to the teacher's width: a linear
    layer with bias when the widths differ, the identity when they agree. Its initial weights are
    those of ``nn.Linear`` (uniform in ±1/√in_dim) drawn from a fixed-seed private generator, so
    every rank and every fresh loss starts from the same projection."""
    if int(in_dim) < 1 or int(out_dim) < 1:
        raise UsageError(f"loss '{loss}': widths must be >= 1, got {in_dim} -> {out_dim}")
    if in_dim == out_dim:
        return nn.Identity()
    layer, bound = nn.Linear(int(in_dim), int(out_dim)), 1.0 / math.sqrt(in_dim)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 2 * bound - bound)
        layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen) * 2 * bound - bound)
    return layer


class ToTeacherWidth(nn.Module):
    """``image_proj`` and ``text_proj``: the student's image and text embeddings mapped to the
    teacher model's width (:func:`projection`), checked against the teacher's features."""

    _name = "loss"

    def _init_projections(self, student_dim: int, teacher_model_dim: int) -> None:
        self.teacher_model_dim = int(teacher_model_dim)
        self.image_proj = projection(student_dim, teacher_model_dim, self._name, PROJECTION_SEEDS["image"])
        self.text_proj = projection(student_dim, teacher_model_dim, self._name, PROJECTION_SEEDS["text"])

    def _projected(self, image: torch.Tensor, text: torch.Tensor, teacher: torch.Tensor):
        if teacher.shape[1] != self.teacher_model_dim:
            raise UsageError(f"loss '{self._name}': the teacher model's features are {teacher.shape[1]}-d "
                             f"but the loss was built for teacher_model_dim={self.teacher_model_dim}")
        return unit(self.image_proj(image.float())), unit(self.text_proj(text.float()))
