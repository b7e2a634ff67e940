"""Per-rank code of test_clip_distributed.py (a plain module so spawned processes import it).
Without a process group ``run`` is the single-process reference on the whole batch."""
from __future__ import annotations

import torch

import vlkd_core
from vlkd_core.sdk import rank, world_size

GLOBAL_BATCH, DIM = 6, 5
LABELS = torch.tensor([0, 1, 2, 1, 3, 0])  # shared labels across the two ranks' halves


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(GLOBAL_BATCH, DIM, generator=gen), torch.randn(GLOBAL_BATCH, DIM, generator=gen)


def run() -> dict:
    r, w = rank(), world_size()
    n = GLOBAL_BATCH // w
    img, txt = batch()
    out = {}
    for case, labels in (("plain", None), ("labels", LABELS)):
        loss = vlkd_core.build_loss("infonce")
        i = img[r * n:(r + 1) * n].clone().requires_grad_(True)
        t = txt[r * n:(r + 1) * n].clone().requires_grad_(True)
        kwargs = {} if labels is None else {"labels": labels[r * n:(r + 1) * n]}
        value = loss(i, t, **kwargs)["loss"]
        value.backward()
        out[case] = {"value": value.detach(), "img_grad": i.grad, "txt_grad": t.grad,
                     "scale_grad": loss.logit_scale.grad}
    return out


SIGLIP_OPTIONS = {"init_logit_bias": -2.0}  # a bias nearer the logits than −10: larger gradients to compare


def run_siglip() -> dict:
    """Each of SigLIP's cross-rank forms on this rank's slice (with and without shared ids):
    value and the gradients of both inputs, the scale and the bias."""
    from vlkd_clip.ring import FORMS
    r, w = rank(), world_size()
    n = GLOBAL_BATCH // w
    img, txt = batch()
    out = {}
    for form in FORMS:
        for case, labels in (("plain", None), ("labels", LABELS)):
            loss = vlkd_core.build_loss("siglip", dist_impl=form, **SIGLIP_OPTIONS)
            i = img[r * n:(r + 1) * n].clone().requires_grad_(True)
            t = txt[r * n:(r + 1) * n].clone().requires_grad_(True)
            kwargs = {} if labels is None else {"labels": labels[r * n:(r + 1) * n]}
            value = loss(i, t, **kwargs)["loss"]
            value.backward()
            out[form, case] = {"value": value.detach(), "img_grad": i.grad, "txt_grad": t.grad,
                               "scale_grad": loss.logit_scale.grad, "bias_grad": loss.logit_bias.grad}
    return out
