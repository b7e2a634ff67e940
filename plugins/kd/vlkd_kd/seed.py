"""SEED: self-supervised distillation through similarity distributions over a queue."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad

from .common import check_pair, positive, unit
from .state import QueueMixin


class SEED(QueueMixin):
    """SEED: cross-entropy between the teacher's and the student's similarity distributions over
    [the teacher feature itself, a queue of past teacher features]:
    logits_s = [ŝ·t̂, ŝQᵀ]/τ_s, p_t = softmax([1, t̂Qᵀ]/τ_t), loss = −mean Σ p_t log_softmax(logits_s);
    then t̂ (gathered from all ranks) is enqueued FIFO.

    Buffers: ``queue`` [queue_size, teacher_dim] and ``queue_ptr``, allocated at construction
    (``teacher_dim`` comes from the engine, not from the user). A new queue holds random unit rows
    (fixed seed, identical on every rank) until real teacher features replace them.
    """

    formula = "−mean Σ softmax([1, t̂Qᵀ]/τ_t) · log_softmax([ŝ·t̂, ŝQᵀ]/τ_s); enqueue t̂"
    paper = ("Fang, Wang, Wang, Zhang, Yang, Liu. SEED: Self-supervised Distillation for Visual "
             "Representation. ICLR 2021, arXiv:2101.04731")
    needs = LossNeeds(teacher=True, gathers=True)
    _name = "seed"

    def __init__(self, *, teacher_dim: int, queue_size: int = 65536, student_temp: float = 0.07,
                 teacher_temp: float = 1e-4):
        super().__init__()
        self.student_temp = positive(student_temp, "student_temp", "seed")
        self.teacher_temp = positive(teacher_temp, "teacher_temp", "seed")
        self._init_queues({"queue": teacher_dim}, queue_size)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        check_pair(student, teacher, "seed")
        s, t = unit(student), unit(teacher.detach())
        queue = self._queue("queue", t).clone()  # updated in place below, before backward
        logits_s = torch.cat([(s * t).sum(dim=1, keepdim=True), s @ queue.T], dim=1) / self.student_temp
        logits_t = torch.cat([torch.ones_like(t[:, :1]), t @ queue.T], dim=1) / self.teacher_temp
        loss = -(F.softmax(logits_t, dim=1) * F.log_softmax(logits_s, dim=1)).sum(dim=1).mean()
        if self.training:  # like BatchNorm statistics: eval-mode calls leave the state alone
            self._enqueue({"queue": all_gather_no_grad(t)})
        return loss
