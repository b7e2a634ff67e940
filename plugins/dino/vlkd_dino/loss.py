"""The DINO loss on prototype logits, with a running teacher center and temperature warm-up."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_reduce_sum, world_size
from vlkd_core.errors import UsageError


class DINOLoss(nn.Module):
    """DINO: cross-entropy from the centred, sharpened teacher distribution
    q = softmax((t − c)/τ_t) (teacher detached) to the student's log_softmax(s/τ_s), mean over the
    batch; then the center moves towards the teacher's batch mean over all ranks:
    c ← m·c + (1−m)·mean_batch(t).

    The buffer ``center`` [1, K] starts at 0; K is ``teacher_dim``, the prototype count, which
    the engine passes at construction (it is not a user option). τ_t rises linearly
    from ``warmup_teacher_temp`` to ``teacher_temp`` over the first ``warmup_teacher_temp_epochs``
    epochs (as DINO's ``np.linspace``), driven by ``set_epoch(epoch, total_epochs)``. Eval-mode
    calls do not update the center.

    Prototypes: in ``vlkd train`` s and t are the student's and the teacher's features scored
    against **the same prototype vectors** — the prototype heads of both sides share one
    learned prototype layer (the student's); the teacher's projection before it is frozen and
    its logits are detached, so the prototypes learn through the student's side only.
    s = P·norm(g_s(student)), t = P·norm(g_t(teacher)), P shared, g_t frozen.
    """

    formula = ("mean_b Σ_k −softmax((t−c)/τ_t)_k · log_softmax(s/τ_s)_k; c ← m·c + (1−m)·mean_b t; "
               "s, t scored against the same (student's) prototypes")
    paper = ("Caron et al. Emerging Properties in Self-Supervised Vision Transformers (DINO). "
             "ICCV 2021, arXiv:2104.14294")
    needs = LossNeeds(teacher=True, prototype_head="dino", gathers=True, epochs=True)

    def __init__(self, *, teacher_dim: int, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 warmup_teacher_temp: float = 0.04, warmup_teacher_temp_epochs: int = 0,
                 center_momentum: float = 0.9):
        super().__init__()
        for option, value in (("student_temp", student_temp), ("teacher_temp", teacher_temp),
                              ("warmup_teacher_temp", warmup_teacher_temp)):
            if not value > 0:
                raise UsageError(f"loss 'dino': option {option} must be > 0, got {value}")
        if warmup_teacher_temp_epochs < 0:
            raise UsageError("loss 'dino': option warmup_teacher_temp_epochs must be >= 0")
        if int(teacher_dim) < 1:
            raise UsageError(f"loss 'dino': teacher_dim (the prototype count) must be >= 1, got {teacher_dim}")
        if not 0 <= center_momentum <= 1:
            raise UsageError(f"loss 'dino': option center_momentum must be in [0, 1], got {center_momentum}")
        self.student_temp, self.teacher_temp = float(student_temp), float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_epochs = int(warmup_teacher_temp_epochs)
        self.center_momentum = float(center_momentum)
        self.epoch = 0
        self.register_buffer("center", torch.zeros(1, int(teacher_dim)))

    def set_epoch(self, epoch: int, total_epochs: int | None = None) -> None:
        """Select the teacher temperature of ``epoch`` (0-based)."""
        self.epoch = int(epoch)

    def current_teacher_temp(self) -> float:
        """τ_t of the current epoch: linear warm-up (endpoints included), then ``teacher_temp``."""
        warm = self.warmup_teacher_temp_epochs
        if self.epoch >= warm:
            return self.teacher_temp
        if warm == 1:
            return self.warmup_teacher_temp
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * self.epoch / (warm - 1)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        if student.dim() != 2 or student.shape != teacher.shape:
            raise UsageError(f"loss 'dino': student {tuple(student.shape)} and teacher "
                             f"{tuple(teacher.shape)} must both be [B, K] prototype logits")
        if teacher.shape[1] != self.center.shape[1]:
            raise UsageError(f"loss 'dino': logits have {teacher.shape[1]} prototypes but the "
                             f"'center' buffer has {self.center.shape[1]}")
        s, t = student.float(), teacher.detach().float()
        center = self.center
        temp = self.current_teacher_temp()
        q = F.softmax((t - center) / temp, dim=1)
        loss = -(q * F.log_softmax(s / self.student_temp, dim=1)).sum(dim=1).mean()
        if self.training:  # like BatchNorm statistics: eval-mode calls leave the state alone
            self._update_center(t)
        return {"loss": loss, "teacher_temp": torch.tensor(temp)}

    @torch.no_grad()
    def _update_center(self, t: torch.Tensor) -> None:
        batch_center = all_reduce_sum(t.sum(dim=0, keepdim=True)) / (t.shape[0] * world_size())
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
