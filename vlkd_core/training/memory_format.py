"""--channels-last: a trainable convolution tower stores its 4-D weights as NHWC. On this CPU
(oneDNN) a resnet18 student trains 5-8 % faster at 48 px and 25 % at 160 px
(benchmarks/README.md); a ViT's only convolution is its patch embedding, where it buys nothing.
A conv's output follows its weight's format, so the inputs need no conversion; checkpoints
are written contiguous (safetensors' save_model), so runs load either way."""
from __future__ import annotations

from torch import nn


def mostly_convolutions(tower: nn.Module) -> bool:
    """Whether 2-D convolution weights hold most of ``tower``'s parameters."""
    conv = sum(m.weight.numel() for m in tower.modules() if isinstance(m, nn.Conv2d))
    return conv * 2 > sum(p.numel() for p in tower.parameters())


def wants_channels_last(setting: str, tower: nn.Module, sharded: bool, trainable: bool = True) -> bool:
    """``setting`` is auto | on | off; auto means on for a convolution tower that trains, not
    under --fsdp (whose shards split tensors by their storage order). A locked tower stays as
    `vlkd features extract` and evaluation build it, so its features match theirs bit for bit."""
    if setting == "auto":
        return trainable and not sharded and mostly_convolutions(tower)
    return setting == "on"
