"""FIFO feature queues, allocated at their final shape ``[queue_size, D]`` at construction.

The engine passes the feature widths to the loss factory (``student_dim`` / ``teacher_dim``), so
every queue is a plain buffer from the start: checkpoints are plain tensors (safetensors,
``weights_only``) and a fresh loss loads a saved state with torch's own shape check.

Not-yet-filled slots hold random unit rows drawn from a fixed-seed private generator (as MoCo,
SEED and CompRess initialise their queues): every rank and every fresh instance gets the same
rows without communication, and the loss is well defined (non-zero, with gradient) from step 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.errors import UsageError

QUEUE_SEED = 0  # the seed of the random rows a new queue starts with


def random_unit_rows(rows: int, dim: int, seed: int = QUEUE_SEED) -> torch.Tensor:
    """``rows`` random L2-normalised rows of width ``dim`` (deterministic for a seed)."""
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=gen), dim=1)


class QueueMixin(nn.Module):
    """FIFO queues of features ``[queue_size, D]`` sharing one ``queue_ptr``."""

    _name = "queue loss"  # the registered name, for messages

    def _init_queues(self, widths: dict[str, int], queue_size: int) -> None:
        """Register one queue per ``{buffer name: width}``, filled with the seeded unit rows."""
        if int(queue_size) < 1:
            raise UsageError(f"loss '{self._name}': option queue_size must be >= 1, got {queue_size}")
        self.queue_size = int(queue_size)
        for name, dim in widths.items():
            if int(dim) < 1:
                raise UsageError(f"loss '{self._name}': the width of '{name}' must be >= 1, got {dim}")
            self.register_buffer(name, random_unit_rows(self.queue_size, int(dim)))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _queue(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The queue ``name``, checked against features ``like`` [B, D]."""
        queue = getattr(self, name)
        if like.shape[1] != queue.shape[1]:
            raise UsageError(f"loss '{self._name}': features are {like.shape[1]}-d but the "
                             f"'{name}' buffer holds {queue.shape[1]}-d rows (the loss was built "
                             "for other widths)")
        return queue

    @torch.no_grad()
    def _enqueue(self, items: dict[str, torch.Tensor]) -> None:
        """Write each [n, D] block FIFO into its queue (wrap-around, any n), then advance the
        shared pointer by n. When n > queue_size only the newest queue_size rows survive."""
        q, p = self.queue_size, int(self.queue_ptr)
        n = next(iter(items.values())).shape[0]
        start, keep = (p + n - q) % q if n > q else p, min(n, q)
        for name, feats in items.items():
            queue = getattr(self, name)
            idx = (start + torch.arange(keep, device=queue.device)) % q
            queue[idx] = feats[n - keep:].to(queue.dtype)
        self.queue_ptr.fill_((p + n) % q)
