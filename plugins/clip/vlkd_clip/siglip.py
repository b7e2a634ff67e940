"""SigLIP: the pairwise sigmoid image-text loss, with negatives from every rank."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.contracts import LossNeeds
from vlkd_core.sdk import all_gather_no_grad
from vlkd_core.errors import UsageError

from .ring import FORMS, from_other_ranks


def _signs(row_ids: torch.Tensor | None, col_ids: torch.Tensor | None, rows: int, cols: int,
           same_rank: bool, like: torch.Tensor) -> torch.Tensor:
    """z_ij: +1 for a positive pair, −1 for a negative one. Without ids the positives are the
    diagonal of a rank's own block; with ids, every pair sharing an id."""
    if row_ids is not None:
        return (row_ids[:, None] == col_ids[None, :]).to(like.dtype) * 2 - 1
    signs = -torch.ones(rows, cols, dtype=like.dtype, device=like.device)
    return signs + 2 * torch.eye(rows, cols, dtype=like.dtype, device=like.device) if same_rank else signs


class SigLIP(nn.Module):
    """SigLIP (Zhai et al., ICCV 2023): every image-text pair of the global batch is a binary
    classification, positive for the matching caption and negative for every other one:

        L = −1/|B| Σ_i Σ_j log sigmoid(z_ij (t x̂_i·ŷ_j + b)),  t = exp(t'),

    with a learnable log-scale t' (``init_logit_scale``, ln 10) and bias b (``init_logit_bias``,
    −10), as in the paper and open_clip's SigLIP models (the same option names).

    Across ranks it is big_vision's chunked form, as open_clip's ``SigLipLoss``: each rank keeps
    its B image rows and the text chunks travel, so no rank builds the global matrix. Rank r's
    loss is its rows against its own texts (positives on the diagonal) plus every other rank's
    text chunk (all negatives), summed and divided by the local B; the mean over ranks is L of the
    global batch. ``dist_impl`` picks how chunks travel (open_clip's names): ``bidir`` (default)
    passes a chunk to both neighbours per step, ``shift`` passes one to the right per step,
    ``gather`` all-gathers them; all three give the same value and gradients.

    vlkd departs from open_clip in two places: the log-scale is clamped in place to
    ≤ ln ``max_logit_scale`` after each optimizer step (open_clip's training loop does this for
    every model, vlkd through ``after_optimizer_step``), and ``labels=`` (caption ids, globally
    consistent) make pairs with one caption positives (z_ij = +1), as the DESIGN asks of every
    contrastive loss; with distinct ids this is exactly the loss above.
    """

    formula = ("−1/|B| Σ_i Σ_j log sigmoid(z_ij (t x̂_i·ŷ_j + b)), z_ij = +1 for a matching pair else −1, "
               "t = exp(t'), learnable t' (init ln 10) and b (init −10); text chunks rotate between ranks")
    paper = ("Zhai, Mustafa, Kolesnikov, Beyer. Sigmoid Loss for Language Image Pre-Training (SigLIP). "
             "ICCV 2023, arXiv:2303.15343")
    needs = LossNeeds(teacher=False, symmetric=True, gathers=True, labels=True, after_step=True)

    def __init__(self, init_logit_scale: float = math.log(10), init_logit_bias: float = -10.0,
                 max_logit_scale: float = 100.0, dist_impl: str = "bidir"):
        super().__init__()
        if dist_impl not in FORMS:
            raise UsageError(f"loss 'siglip': option dist_impl must be one of {', '.join(FORMS)}, got {dist_impl!r}")
        if not max_logit_scale > 0:
            raise UsageError(f"loss 'siglip': option max_logit_scale must be > 0, got {max_logit_scale}")
        self.dist_impl, self.max_logit_scale = dist_impl, float(max_logit_scale)
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)))
        self.after_optimizer_step()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Clamp the log-scale in place to ≤ ln max_logit_scale (open_clip's way)."""
        self.logit_scale.clamp_(max=math.log(self.max_logit_scale))

    def _block(self, img: torch.Tensor, txt: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
        """Σ −log sigmoid(z (t x̂·ŷ + b)) over one block of rows and columns."""
        logits = self.logit_scale.exp() * img @ txt.T + self.logit_bias
        return -F.logsigmoid(signs * logits).sum()

    def forward(self, image: torch.Tensor, text: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if image.dim() != 2 or image.shape != text.shape:
            raise UsageError(f"loss 'siglip': image {tuple(image.shape)} and text {tuple(text.shape)} "
                             "features must both be [B, D]")
        n = image.shape[0]
        if labels is not None:
            labels = torch.as_tensor(labels, device=image.device).long()
            if labels.shape != (n,):
                raise UsageError(f"loss 'siglip': labels must be [B]={n} ids, got shape {tuple(labels.shape)}")
        img, txt = F.normalize(image.float(), dim=1), F.normalize(text.float(), dim=1)
        loss = self._block(img, txt, _signs(labels, labels, n, n, True, img))
        chunks = from_other_ranks(txt, self.dist_impl)
        ids = None if labels is None or not chunks else all_gather_no_grad(labels).view(-1, n)  # [W, B]
        for source, chunk in chunks:
            col_ids = None if ids is None else ids[source]
            loss = loss + self._block(img, chunk, _signs(labels, col_ids, n, chunk.shape[0], False, img))
        return {"loss": loss / n, "logit_scale": self.logit_scale.exp().detach(),
                "logit_bias": self.logit_bias.detach()}
