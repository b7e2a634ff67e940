"""Builtin projection heads (registered by the ``builtin-heads`` plugin)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


class LinearHead(nn.Module):
    """A single linear projection, optionally L2-normalised."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, normalize: bool = False):
        super().__init__()
        self.in_dim, self.output_dim, self.normalize = in_dim, out_dim, normalize
        self.proj = nn.Linear(in_dim, out_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return F.normalize(x, dim=-1) if self.normalize else x


class MLPHead(nn.Module):
    """An MLP of ``layers`` linear layers (hidden width ``hidden_dim``), optionally L2-normalised."""

    def __init__(self, in_dim: int, out_dim: int, layers: int = 2, hidden_dim: int = 2048,
                 activation: str = "gelu", batch_norm: bool = False, normalize: bool = False):
        super().__init__()
        if layers < 1:
            raise ValueError(f"mlp head: layers must be >= 1, got {layers}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"mlp head: activation '{activation}' not in {sorted(ACTIVATIONS)}")
        self.in_dim, self.output_dim, self.normalize = in_dim, out_dim, normalize
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            modules.append(nn.Linear(a, b))
            if i < layers - 1:
                if batch_norm:
                    modules.append(nn.BatchNorm1d(b))
                modules.append(ACTIVATIONS[activation]())
        self.mlp = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(x)
        return F.normalize(x, dim=-1) if self.normalize else x
