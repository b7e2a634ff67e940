"""Per-rank code of test_protocpc_distributed.py; without a process group it is the
single-process reference on the whole batch."""
from __future__ import annotations

import torch

import vlkd_core
from vlkd_core.sdk import rank, world_size

GLOBAL_BATCH, K, STEPS = 8, 5, 3


def run() -> dict:
    r, w = rank(), world_size()
    n = GLOBAL_BATCH // w
    loss = vlkd_core.build_loss("protocpc", widths={"student_dim": K, "teacher_dim": K}, teacher_temp=0.2)
    values, grads = [], []
    for step in range(STEPS):
        gen = torch.Generator().manual_seed(300 + step)
        s, t = torch.randn(GLOBAL_BATCH, K, generator=gen), torch.randn(GLOBAL_BATCH, K, generator=gen)
        s = s[r * n:(r + 1) * n].clone().requires_grad_(True)
        value = vlkd_core.loss_value(loss(s, t[r * n:(r + 1) * n]))
        value.backward()
        values.append(value.detach())
        grads.append(s.grad)
    return {"values": values, "grads": grads, "prior": loss.prior.clone()}
