"""Small helpers shared by the KD losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_core.errors import UsageError


def unit(x: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 normalisation in float32 (features may arrive in bf16/fp16 under AMP)."""
    return F.normalize(x.float(), dim=1)


def positive(value: float, option: str, loss: str) -> float:
    """Validate a strictly positive option (temperatures, ...)."""
    if not value > 0:
        raise UsageError(f"loss '{loss}': option {option} must be > 0, got {value}")
    return float(value)


def check_pair(student: torch.Tensor, teacher: torch.Tensor, loss: str, same_dim: bool = True) -> None:
    """Both inputs [B, D] with the same batch (and width, when the loss compares them)."""
    if student.dim() != 2 or teacher.dim() != 2:
        raise UsageError(f"loss '{loss}': expects [B, D] features, got {tuple(student.shape)} "
                         f"and {tuple(teacher.shape)}")
    if student.shape[0] != teacher.shape[0] or (same_dim and student.shape[1] != teacher.shape[1]):
        raise UsageError(f"loss '{loss}': student {tuple(student.shape)} and teacher "
                         f"{tuple(teacher.shape)} features do not match")
