"""Symmetric image-text contrastive losses (CLIP InfoNCE and its UniCL label-aware form)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad, all_gather_with_grad, rank
from vlkd_core.errors import UsageError


def soft_targets(labels: torch.Tensor, all_labels: torch.Tensor) -> torch.Tensor:
    """Row i: the indicator of columns sharing label i, normalised to sum to one."""
    positives = (labels[:, None] == all_labels[None, :]).float()
    return positives / positives.sum(dim=1, keepdim=True)


class InfoNCE(nn.Module):
    """CLIP's symmetric InfoNCE between L2-normalised image and text features with a learnable
    temperature. Under DDP it uses global negatives in the local-loss form: each rank scores its
    own rows against the columns gathered from every rank (with gradient), so the mean of the
    per-rank losses is the loss of the global batch.

    ``labels=`` (caption or class ids, [B] ints, globally consistent across ranks) turns samples
    sharing a label into positives with UniCL-style soft targets (each target row is the
    normalised indicator of equal labels); with all-distinct labels this is exactly InfoNCE.
    """

    formula = ("½[CE(σ ŝt̂ᵀ, diag) + CE(σ t̂ŝᵀ, diag)], σ = exp(log-scale); the log-scale is clamped "
               "in place to ≤ ln max_logit_scale after each optimizer step")
    paper = ("Radford et al. Learning Transferable Visual Models From Natural Language Supervision "
             "(CLIP). ICML 2021, arXiv:2103.00020; van den Oord et al. InfoNCE, arXiv:1807.03748")
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, after_step=True)

    def __init__(self, init_temperature: float = 0.07, learn_temperature: bool = True,
                 max_logit_scale: float = 100.0):
        super().__init__()
        if not init_temperature > 0:
            raise UsageError(f"option init_temperature must be > 0, got {init_temperature}")
        if not max_logit_scale > 0:
            raise UsageError(f"option max_logit_scale must be > 0, got {max_logit_scale}")
        self.max_logit_scale = float(max_logit_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)),
                                        requires_grad=bool(learn_temperature))
        self.after_optimizer_step()  # an init_temperature below 1/max_logit_scale starts at the cap
        self._diagonal: dict[tuple, torch.Tensor] = {}  # (B, rank, device) -> targets

    def scale(self) -> torch.Tensor:
        """σ = exp(log-scale). Not clamped here: a clamp inside forward would zero the gradient
        past the cap, and without weight decay the scale could never come back."""
        return self.logit_scale.exp()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Clamp the log-scale in place to ≤ ln max_logit_scale (OpenCLIP's way)."""
        self.logit_scale.clamp_(max=math.log(self.max_logit_scale))

    def _diagonal_targets(self, batch: int, device: torch.device) -> torch.Tensor:
        key = (batch, rank(), device)
        if key not in self._diagonal:
            self._diagonal[key] = torch.arange(batch, device=device) + rank() * batch
        return self._diagonal[key]

    def forward(self, image: torch.Tensor, text: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if image.dim() != 2 or image.shape != text.shape:
            raise UsageError(f"loss '{getattr(self, 'vlkd_name', 'infonce')}': image {tuple(image.shape)} "
                             f"and text {tuple(text.shape)} features must both be [B, D]")
        img, txt = F.normalize(image.float(), dim=1), F.normalize(text.float(), dim=1)
        scale = self.scale()
        all_img, all_txt = all_gather_with_grad(img), all_gather_with_grad(txt)
        logits_it = scale * img @ all_txt.T  # local rows against global columns
        logits_ti = scale * txt @ all_img.T
        if labels is None:
            target = self._diagonal_targets(img.shape[0], img.device)
        else:
            labels = torch.as_tensor(labels, device=img.device).long()
            if labels.shape != (img.shape[0],):
                raise UsageError(f"labels must be [B]={img.shape[0]} ids, got shape {tuple(labels.shape)}")
            target = soft_targets(labels, all_gather_no_grad(labels))
        loss = (F.cross_entropy(logits_it, target) + F.cross_entropy(logits_ti, target)) / 2
        return {"loss": loss, "logit_scale": scale.detach()}


class UniCL(InfoNCE):
    """UniCL: unified image-text-label contrastive learning. Images and texts that share a label
    (class id or caption id, globally consistent across ranks) are all positives: each target row
    is the normalised indicator of equal labels. Without ``labels=`` it falls back to InfoNCE.
    The engine gives rows with a class label their class's id and the other rows their
    caption's id (``LossNeeds.class_labels``)."""

    formula = "½[CE(σ ŝt̂ᵀ, T) + CE(σ t̂ŝᵀ, T)], T_ij = 1[y_i = y_j] / Σ_k 1[y_i = y_k]"
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, class_labels=True,
                      after_step=True)
    paper = ("Yang et al. Unified Contrastive Learning in Image-Text-Label Space (UniCL). "
             "CVPR 2022, arXiv:2204.03610")
