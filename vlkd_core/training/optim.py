"""AdamW with no decay on norms, biases and temperatures; linear warmup then cosine decay."""
from __future__ import annotations

import math

import torch
from torch import nn


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim < 2 or "norm" in name.lower() or "logit_scale" in name or "temperature" in name \
        or name.endswith(".bias") or "embedding" in name.lower() and "position" in name.lower()


def param_groups(named: dict[str, list[tuple[str, nn.Parameter]]], lrs: dict[str, float],
                 weight_decay: float) -> list[dict]:
    """``named``: group name -> (param name, param); one decay and one no-decay group each."""
    groups = []
    for group, params in named.items():
        params = [(n, p) for n, p in params if p.requires_grad]
        decay = [p for n, p in params if not _no_decay(n, p)]
        plain = [p for n, p in params if _no_decay(n, p)]
        for ps, wd, tag in ((decay, weight_decay, "decay"), (plain, 0.0, "no_decay")):
            if ps:
                groups.append({"params": ps, "lr": lrs[group], "weight_decay": wd, "name": f"{group}/{tag}"})
    return groups


def build_optimizer(groups: list[dict]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(0, min(warmup, total - 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
