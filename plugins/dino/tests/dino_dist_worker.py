"""Per-rank code of test_dino_distributed.py; without a process group it is the single-process
reference on the whole batch."""
from __future__ import annotations

import torch

import vlkd_core
from vlkd_core.sdk import rank, world_size

GLOBAL_BATCH, K, STEPS = 8, 5, 3


def run() -> dict:
    r, w = rank(), world_size()
    n = GLOBAL_BATCH // w
    loss = vlkd_core.build_loss("dino", widths={"student_dim": K, "teacher_dim": K},
                                warmup_teacher_temp=0.02, warmup_teacher_temp_epochs=3)
    values, grads = [], []
    for step in range(STEPS):
        loss.set_epoch(step, STEPS)
        gen = torch.Generator().manual_seed(200 + step)
        s, t = torch.randn(GLOBAL_BATCH, K, generator=gen), torch.randn(GLOBAL_BATCH, K, generator=gen) + step
        s = s[r * n:(r + 1) * n].clone().requires_grad_(True)
        value = vlkd_core.loss_value(loss(s, t[r * n:(r + 1) * n]))
        value.backward()
        values.append(value.detach())
        grads.append(s.grad)
    return {"values": values, "grads": grads, "center": loss.center.clone()}
