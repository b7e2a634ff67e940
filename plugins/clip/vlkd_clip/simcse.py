"""Unsupervised SimCSE as a regulariser of a trainable text tower."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad, all_gather_with_grad, rank
from vlkd_core.errors import UsageError

from .infonce import soft_targets


class SimCSE(nn.Module):
    """Unsupervised SimCSE: each caption is encoded twice in train mode, so the two passes
    differ only by their dropout masks; the second pass of the same caption is the positive and
    the second passes of the other captions (gathered from every rank) are the negatives:
    loss = mean_i −log softmax_j(cos(h_i, h'_j)/τ)_i. Identical captions in a batch are not
    negatives of each other (``labels=`` caption ids, as InfoNCE). Use it next to another loss,
    e.g. ``--loss "infonce,simcse:0.1" --teacher none``; it needs a trainable text tower with
    dropout (HF text towers have it; ``toy`` takes ``dropout=``)."""

    formula = "mean_i −log softmax_j(cos(h_i, h'_j)/τ)_i, h and h' two dropout passes of the same captions"
    paper = ("Gao, Yao, Chen. SimCSE: Simple Contrastive Learning of Sentence Embeddings. "
             "EMNLP 2021, arXiv:2104.08821")
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, second_view="text")

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if not temperature > 0:
            raise UsageError(f"loss 'simcse': option temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, view: torch.Tensor, again: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if view.dim() != 2 or view.shape != again.shape:
            raise UsageError(f"loss 'simcse': the two views {tuple(view.shape)} and {tuple(again.shape)} "
                             "must both be [B, D]")
        h, h2 = F.normalize(view.float(), dim=1), F.normalize(again.float(), dim=1)
        logits = h @ all_gather_with_grad(h2).T / self.temperature  # local rows, global columns
        if labels is None:
            target = torch.arange(h.shape[0], device=h.device) + rank() * h.shape[0]
        else:
            target = soft_targets(labels.long(), all_gather_no_grad(labels.long()))
        return F.cross_entropy(logits, target)
