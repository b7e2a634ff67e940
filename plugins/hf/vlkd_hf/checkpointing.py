"""--grad-checkpointing for every HF tower: transformers' own switch, non-reentrant."""
from __future__ import annotations

from torch import nn


def set_grad_checkpointing(model: nn.Module, enable: bool) -> None:
    if enable:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()
