"""The builtin optimizers (``--optimizer``), registered by ``builtins/optimizers.py``.

An optimizer factory is called ``factory(groups, **options)``: ``groups`` are the engine's
parameter groups (``params``, ``lr``, ``weight_decay``, ``name``: no decay on norms, biases and
temperatures, per-tower learning rates, ``--layer-decay`` depths; see ``optim.param_groups``),
so ``lr`` and ``weight_decay`` are never options. Anything else it declares is an
``--optimizer-option``. A ``torch.optim.Optimizer`` class registered as it is works too.
"""
from __future__ import annotations

import torch


def fused_ok(groups: list[dict]) -> bool:
    """The fused kernels take floating-point tensors on one CPU/CUDA device type."""
    params = [p for g in groups for p in g["params"]]
    kinds = {p.device.type for p in params}
    from torch.distributed.tensor import DTensor
    sharded = {isinstance(p, DTensor) for p in params}  # --fsdp: scalars stay plain tensors
    return bool(params) and len(kinds) == 1 and kinds <= {"cpu", "cuda"} and len(sharded) == 1 \
        and all(p.is_floating_point() for p in params)


def adamw(groups: list[dict], betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-6) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay, Loshchilov & Hutter 2019) with OpenCLIP's betas and eps;
    beta2 0.98 suits large contrastive batches (CLIP), 0.999 is torch's default.

    Fused when the parameters allow: one kernel over every tensor instead of a Python loop per
    parameter (on CPU the per-tensor loop cost ~40x the fused step on ViT-S-32)."""
    return torch.optim.AdamW(groups, betas=tuple(betas), eps=eps, fused=fused_ok(groups) or None)


def sgd(groups: list[dict], momentum: float = 0.9, nesterov: bool = False, dampening: float = 0.0) -> torch.optim.Optimizer:
    """SGD with momentum (``nesterov=true`` for Nesterov's); weight decay is added to the
    gradient (L2), as in torch. Linear probes and ResNet fine-tuning use it; it wants a larger
    ``--lr`` than AdamW (e.g. 0.1 x batch/256)."""
    return torch.optim.SGD(groups, momentum=momentum, nesterov=nesterov, dampening=dampening)
