"""CompRess: match the student's similarity distribution over a memory queue to the teacher's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad

from .common import check_pair, positive, unit
from .state import QueueMixin

_PAPER = ("Abbasi Koohpayegani, Tejankar, Pirsiavash. CompRess: Self-Supervised Learning by "
          "Compressing Representations. NeurIPS 2020, arXiv:2010.14713")


class _CompRess(QueueMixin):
    """The KL between the two similarity distributions; subclasses say which queues exist."""

    paper = _PAPER
    _teacher_queue, _student_queue = "teacher_queue", "student_queue"

    def __init__(self, widths: dict[str, int], queue_size: int, temperature: float):
        super().__init__()
        self.temperature = positive(temperature, "temperature", self._name)
        self._init_queues(widths, queue_size)

    def _enqueue_batch(self, s: torch.Tensor, t: torch.Tensor) -> None:
        self._enqueue({"teacher_queue": all_gather_no_grad(t), "student_queue": all_gather_no_grad(s)})

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        check_pair(student, teacher, self._name, same_dim=self.needs.same_dim)
        s, t = unit(student), unit(teacher.detach())
        # clones: the queues are updated in place below, before backward needs these values
        q_t = self._queue(self._teacher_queue, t).clone()
        q_s = self._queue(self._student_queue, s).clone()
        log_p_t = F.log_softmax(t @ q_t.T / self.temperature, dim=1)
        log_p_s = F.log_softmax(s @ q_s.T / self.temperature, dim=1)
        loss = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean")
        if self.training:  # like BatchNorm statistics: eval-mode calls leave the state alone
            self._enqueue_batch(s.detach(), t)
        return loss


class CompRess2q(_CompRess):
    """CompRess-2q: KL(p_t ‖ p_s) (batch mean) where p_t = softmax(t̂ Q_tᵀ/T) over a queue of
    past teacher features and p_s = softmax(ŝ Q_sᵀ/T) over the matching queue of past student
    features; then t̂ and ŝ (gathered from all ranks, detached) are enqueued FIFO.

    Buffers: ``teacher_queue`` [queue_size, teacher_dim], ``student_queue``
    [queue_size, student_dim] and ``queue_ptr``, allocated at construction (the widths come from
    the engine, not from the user). A new queue holds random unit rows (fixed seed, the same rows
    in both queues when widths agree) until real features replace them.
    """

    formula = "KL(softmax(t̂Q_tᵀ/T) ‖ softmax(ŝQ_sᵀ/T)); enqueue t̂→Q_t, ŝ→Q_s"
    needs = LossNeeds(teacher=True, gathers=True, same_dim=False)
    _name = "compress-2q"

    def __init__(self, *, student_dim: int, teacher_dim: int, queue_size: int = 65536,
                 temperature: float = 0.04):
        super().__init__({"teacher_queue": teacher_dim, "student_queue": student_dim},
                         queue_size, temperature)


class CompRess1q(_CompRess):
    """CompRess-1q: KL(p_t ‖ p_s) (batch mean) with both distributions over one queue of past
    teacher features: p_t = softmax(t̂ Qᵀ/T), p_s = softmax(ŝ Qᵀ/T); then t̂ (gathered from all
    ranks) is enqueued FIFO. Buffers: ``queue`` [queue_size, teacher_dim] and ``queue_ptr``,
    allocated at construction; a new queue holds random unit rows (fixed seed) until real
    features replace them."""

    formula = "KL(softmax(t̂Qᵀ/T) ‖ softmax(ŝQᵀ/T)); enqueue t̂"
    needs = LossNeeds(teacher=True, gathers=True)
    _name = "compress-1q"
    _teacher_queue = _student_queue = "queue"  # the student is scored on the teacher queue

    def __init__(self, *, teacher_dim: int, queue_size: int = 65536, temperature: float = 0.04):
        super().__init__({"queue": teacher_dim}, queue_size, temperature)

    def _enqueue_batch(self, s: torch.Tensor, t: torch.Tensor) -> None:
        self._enqueue({"queue": all_gather_no_grad(t)})
