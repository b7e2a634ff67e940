"""Heads as plain linear maps, for formats that can only hold one (a projection to fold a head
into, a sentence-transformers Dense module)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._model.heads import LinearHead

# torch's own modules (activations and the like): what may follow a linear layer of a head
_TORCH_NN = frozenset(v for v in vars(nn).values() if isinstance(v, type) and issubclass(v, nn.Module))


@dataclass
class Linear:
    weight: torch.Tensor          # [out, in]
    bias: torch.Tensor | None     # [out]
    normalize: bool = False       # the head L2-normalises its output


def as_linear(head: nn.Module) -> Linear | None | str:
    """None for no head (Identity), a :class:`Linear` for a linear head, else why it is not one."""
    if isinstance(head, nn.Identity):
        return None
    if isinstance(head, LinearHead):
        proj = head.proj
        return Linear(proj.weight.detach().clone(), _bias(proj), bool(head.normalize))
    if isinstance(head, nn.Linear):
        return Linear(head.weight.detach().clone(), _bias(head))
    return f"its {type(head).__name__} head is not a single linear layer"


def _bias(linear: nn.Linear) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach().clone()


def has_bias(head: Linear) -> bool:
    return head.bias is not None and bool(head.bias.abs().max() > 0)


def head_layers(head: nn.Module) -> tuple[list[tuple[nn.Linear, nn.Module]], bool] | str:
    """A head as (linear layer, activation after it) pairs and whether it L2-normalises at the
    end: linear and batch-norm-free MLP heads; else why not."""
    if isinstance(head, nn.Identity):
        return [], False
    if isinstance(head, LinearHead):
        return [(head.proj, nn.Identity())], bool(head.normalize)
    if isinstance(head, nn.Linear):
        return [(head, nn.Identity())], False
    sequence = getattr(head, "mlp", None)
    if not isinstance(sequence, nn.Sequential):
        return f"its {type(head).__name__} head is not a stack of linear layers"
    out: list[tuple[nn.Linear, nn.Module]] = []
    for module in sequence:
        if isinstance(module, nn.Linear):
            out.append((module, nn.Identity()))
        elif out and isinstance(out[-1][1], nn.Identity) and type(module) in _TORCH_NN:
            if isinstance(module, (nn.BatchNorm1d, nn.Dropout, nn.LayerNorm)):
                return f"its {type(head).__name__} head holds a {type(module).__name__}"
            out[-1] = (out[-1][0], module)
        else:
            return f"its {type(head).__name__} head holds a {type(module).__name__}"
    return out, bool(getattr(head, "normalize", False))
