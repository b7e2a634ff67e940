"""The ProtoCPC loss on prototype logits, with a running prototype prior."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_reduce_sum, world_size
from vlkd_core.errors import UsageError


class ProtoCPC(nn.Module):
    """ProtoCPC: with the teacher's prototype assignment q = softmax(t/τ_t) (teacher detached),
    loss = mean_b[−Σ_k q_k s_k/τ_s + logsumexp_k(s_k/τ_s + log π_k)]; then the prior moves
    towards the prototypes' usage over all ranks: π ← m·π + (1−m)·K·mean_batch(q).

    The buffer ``prior`` [1, K] starts at 1 (uniform); K is ``teacher_dim``, the prototype count,
    which the engine passes at construction (it is not a user option). Eval-mode calls do not
    update the prior.

    Prototypes: in ``vlkd train`` s and t are the student's and the teacher's features scored
    against **the same prototype vectors** — the prototype heads of both sides share one
    learned prototype layer (the student's); the teacher's projection before it is frozen and
    its logits are detached, so the prototypes learn through the student's side only.
    s = P·norm(g_s(student)), t = P·norm(g_t(teacher)), P shared, g_t frozen.
    """

    formula = ("mean_b[−Σ_k q_k s_k/τ_s + logsumexp_k(s_k/τ_s + log π_k)], q = softmax(t/τ_t); "
               "π ← m·π + (1−m)·K·mean_b q; s, t scored against the same (student's) prototypes")
    paper = ("Lee. Representation Distillation by Prototypical Contrastive Predictive Coding "
             "(ProtoCPC). ICLR 2022, openreview.net/forum?id=8la28hZOwug (no arXiv version)")
    needs = LossNeeds(teacher=True, prototype_head="dino", gathers=True)

    def __init__(self, *, teacher_dim: int, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 prior_momentum: float = 0.9):
        super().__init__()
        for option, value in (("student_temp", student_temp), ("teacher_temp", teacher_temp)):
            if not value > 0:
                raise UsageError(f"loss 'protocpc': option {option} must be > 0, got {value}")
        if int(teacher_dim) < 1:
            raise UsageError(f"loss 'protocpc': teacher_dim (the prototype count) must be >= 1, got {teacher_dim}")
        if not 0 <= prior_momentum <= 1:
            raise UsageError(f"loss 'protocpc': option prior_momentum must be in [0, 1], got {prior_momentum}")
        self.student_temp, self.teacher_temp = float(student_temp), float(teacher_temp)
        self.prior_momentum = float(prior_momentum)
        self.register_buffer("prior", torch.ones(1, int(teacher_dim)))

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.dim() != 2 or student.shape != teacher.shape:
            raise UsageError(f"loss 'protocpc': student {tuple(student.shape)} and teacher "
                             f"{tuple(teacher.shape)} must both be [B, K] prototype logits")
        if teacher.shape[1] != self.prior.shape[1]:
            raise UsageError(f"loss 'protocpc': logits have {teacher.shape[1]} prototypes but the "
                             f"'prior' buffer has {self.prior.shape[1]}")
        s, t = student.float() / self.student_temp, teacher.detach().float()
        prior = self.prior.clone()  # updated in place below, before backward
        q = F.softmax(t / self.teacher_temp, dim=1)
        loss = (-(q * s).sum(dim=1) + torch.logsumexp(s + prior.log(), dim=1)).mean()
        if self.training:  # like BatchNorm statistics: eval-mode calls leave the state alone
            self._update_prior(q)
        return loss

    @torch.no_grad()
    def _update_prior(self, q: torch.Tensor) -> None:
        k = q.shape[1]
        usage = all_reduce_sum(q.sum(dim=0, keepdim=True)) / (q.shape[0] * world_size())
        self.prior.mul_(self.prior_momentum).add_(k * usage, alpha=1 - self.prior_momentum)
