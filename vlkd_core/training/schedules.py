"""The builtin learning-rate schedules (``--scheduler``), registered by ``builtins/schedulers.py``.

A scheduler factory is called ``factory(optimizer, **options)`` plus ``warmup_steps`` and
``total_steps`` when it declares them (the engine knows them: ``--warmup-steps``, the run's
optimizer steps), and returns a ``torch.optim.lr_scheduler.LRScheduler`` stepped once per
optimizer step. Its ``state_dict()`` goes into every checkpoint, so a resumed run continues the
schedule where it stopped.

Each builtin warms up linearly over ``warmup_steps`` (at most ``total_steps - 1``) from
``lr / warmup_steps`` to the peak ``--lr``; what comes after is each one's own.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

LambdaLR = torch.optim.lr_scheduler.LambdaLR


def _after_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int,
                  decay: Callable[[float], float]) -> LambdaLR:
    """``decay(progress)``: the lr factor after warm-up, ``progress`` going 0 -> 1."""
    warmup = max(0, min(warmup, total - 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return decay(min(1.0, (step - warmup) / max(1, total - warmup)))

    return LambdaLR(optimizer, factor)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  final_lr_ratio: float = 0.0) -> LambdaLR:
    """Cosine decay from the peak to ``final_lr_ratio`` x peak as the run ends (OpenCLIP,
    SGDR without restarts)."""
    def cosine(progress: float) -> float:
        return final_lr_ratio + (1 - final_lr_ratio) * (0.5 * (1 + math.cos(math.pi * progress)))
    return _after_warmup(optimizer, warmup_steps, total_steps, cosine)


def constant(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """The peak learning rate to the end (for runs extended with --resume, or fine-tuning)."""
    return _after_warmup(optimizer, warmup_steps, total_steps, lambda progress: 1.0)


def linear(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
           final_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear decay from the peak to ``final_lr_ratio`` x peak as the run ends (BERT, Hugging
    Face's ``get_linear_schedule_with_warmup``)."""
    return _after_warmup(optimizer, warmup_steps, total_steps,
                         lambda progress: final_lr_ratio + (1 - final_lr_ratio) * (1 - progress))
