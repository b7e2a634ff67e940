"""Per-rank code of test_kd_distributed.py (a plain module so spawned processes can import it).

``run_steps`` is also the single-process reference: with no process group it sees the whole
batch as "rank 0 of 1".
"""
from __future__ import annotations

import torch

import vlkd_core
from vlkd_core.sdk import rank, world_size

LOSSES = {"barlowtwins": {}, "seed": {"queue_size": 10}, "vicreg": {},
          "compress-2q": {"queue_size": 10}, "compress-1q": {"queue_size": 10}}
GLOBAL_BATCH, DIM, STEPS = 8, 6, 3


def global_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(GLOBAL_BATCH, DIM, generator=gen), torch.randn(GLOBAL_BATCH, DIM, generator=gen)


def run_steps() -> dict:
    """Each loss for STEPS steps on this rank's slice: loss values, student gradients, state."""
    r, w = rank(), world_size()
    n = GLOBAL_BATCH // w
    out: dict = {}
    for name, options in LOSSES.items():
        loss = vlkd_core.build_loss(name, widths={"student_dim": DIM, "teacher_dim": DIM}, **options)
        values, grads = [], []
        for step in range(STEPS):
            s, t = global_batch(step)
            s = s[r * n:(r + 1) * n].clone().requires_grad_(True)
            value = vlkd_core.loss_value(loss(s, t[r * n:(r + 1) * n]))
            value.backward()
            values.append(value.detach())
            grads.append(s.grad)
        out[name] = {"values": values, "grads": grads, "state": loss.state_dict()}
    return out
