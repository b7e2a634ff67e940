"""The DINO projection head: MLP → L2 norm → weight-normalised prototype layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from vlkd_core.errors import UsageError


class DINOHead(nn.Module):
    """DINO projection head: an MLP of ``layers`` linear layers (GELU, hidden width
    ``hidden_dim``) down to ``bottleneck_dim``, L2 normalisation, then a bias-free prototype
    layer with weight normalisation (``torch.nn.utils.parametrizations.weight_norm``). Its
    magnitude g starts at 1; with ``norm_last_layer`` it stays frozen at 1, so logits are cosine
    similarities to ``out_dim`` prototypes."""

    paper = ("Caron et al. Emerging Properties in Self-Supervised Vision Transformers (DINO). "
             "ICCV 2021, arXiv:2104.14294")

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 layers: int = 3, norm_last_layer: bool = True):
        super().__init__()
        if layers < 1:
            raise UsageError(f"dino head: option layers must be >= 1, got {layers}")
        self.in_dim, self.output_dim = in_dim, out_dim
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [bottleneck_dim]
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            modules.append(nn.Linear(a, b))
            if i < layers - 1:
                modules.append(nn.GELU())
        self.mlp = nn.Sequential(*modules)
        self.mlp.apply(self._init_weights)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0  # g, [out_dim, 1]
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return self.last_layer(x)
