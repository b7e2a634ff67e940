"""Loss state whose width is only known at the first call, and FIFO feature queues.

A queue is registered at construction as a ``[queue_size, 0]`` placeholder buffer, so its name is
always in ``state_dict()``. The first call allocates it as ``[queue_size, D]``; loading a state
dict into a fresh loss adopts the saved shape. This keeps checkpoints plain tensors (safetensors,
``weights_only``) and works under DDP, unlike ``UninitializedBuffer``.

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


class LazyStateMixin(nn.Module):
    """Buffers registered as empty placeholders and sized on first use or on load."""

    _lazy_buffers: tuple[str, ...] = ()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name in self._lazy_buffers:
            incoming = state_dict.get(prefix + name)
            current = getattr(self, name)
            if (incoming is not None and incoming.shape != current.shape
                    and incoming.shape[:-1] == current.shape[:-1]
                    and (current.numel() == 0 or incoming.numel() == 0)):
                # adopt the saved width (allocated or placeholder); other mismatches
                # (e.g. a different queue_size) still fail loudly in torch's own check
                setattr(self, name, torch.empty(incoming.shape, dtype=current.dtype,
                                                device=current.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class QueueMixin(LazyStateMixin):
    """FIFO queues of features ``[queue_size, D]`` sharing one ``queue_ptr``."""

    def _init_queues(self, names: tuple[str, ...], queue_size: int) -> None:
        if int(queue_size) < 1:
            raise UsageError(f"option queue_size must be >= 1, got {queue_size}")
        self.queue_size = int(queue_size)
        self._lazy_buffers = names
        for name in names:
            self.register_buffer(name, torch.zeros(self.queue_size, 0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _queue(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The queue ``name``, allocated for features like ``like`` [B, D] on first use."""
        queue = getattr(self, name)
        dim = like.shape[1]
        if queue.shape[1] == 0:
            queue = random_unit_rows(self.queue_size, dim).to(device=like.device)
            setattr(self, name, queue)
        elif queue.shape[1] != dim:
            raise UsageError(f"loss '{type(self).__name__}': features are {dim}-d but the "
                             f"'{name}' buffer holds {queue.shape[1]}-d rows")
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
