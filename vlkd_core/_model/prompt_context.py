"""Learnable prompt vectors (CoOp, Zhou et al. 2022), shared by the text-tower families: N context
vectors inserted right after a sequence's first (start / [CLS]) token. Families add how their
other per-token inputs follow (ids, attention masks) and how the vectors are initialised."""
from __future__ import annotations

import torch
from torch import nn

CTX_INIT_STD = 0.02  # CoOp's random initialisation


class PromptContext(nn.Module):
    """``ctx`` [N, width]: the learnable context vectors (a locked tower keeps them trainable)."""

    def __init__(self, ctx: torch.Tensor):
        super().__init__()
        self.ctx = nn.Parameter(ctx.detach().clone())

    @property
    def num_tokens(self) -> int:
        return int(self.ctx.shape[0])

    def insert(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, T, D] token embeddings -> [B, T + N, D]: first token, context, the rest."""
        ctx = self.ctx.to(embeddings.dtype).unsqueeze(0).expand(embeddings.shape[0], -1, -1)
        return torch.cat([embeddings[:, :1], ctx, embeddings[:, 1:]], dim=1)
