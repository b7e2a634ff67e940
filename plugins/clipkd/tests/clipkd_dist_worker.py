"""Per-rank code of test_clipkd_distributed.py (a plain module so spawned processes import it).
Without a process group ``run`` is one process on the whole batch."""
from __future__ import annotations

import torch

import vlkd_core
from vlkd_core.sdk import rank, world_size, LossCall
from vlkd_core.testing import loss_inputs

GLOBAL_BATCH, DIM, TEACHER_DIM = 6, 5, 7
LABELS = torch.tensor([0, 1, 2, 1, 3, 0])  # captions shared across the two ranks' halves
WIDTHS = {"student_dim": DIM, "teacher_dim": DIM, "teacher_model_dim": TEACHER_DIM}
CASES = {"affinity-mimic": None, "relation-distill": None, "mobileclip-kd": None, "feature-distill": None,
         "interactive-contrast": None, "interactive-contrast/labels": LABELS}


def batch() -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(11)
    return (torch.randn(GLOBAL_BATCH, DIM, generator=gen), torch.randn(GLOBAL_BATCH, DIM, generator=gen),
            torch.randn(GLOBAL_BATCH, TEACHER_DIM, generator=gen), torch.randn(GLOBAL_BATCH, TEACHER_DIM, generator=gen))


def run() -> dict:
    """Every loss on this rank's rows, called as the engine calls it: value, the gradients of the
    student's local image and text rows and of every parameter."""
    r, w = rank(), world_size()
    rows = slice(r * GLOBAL_BATCH // w, (r + 1) * GLOBAL_BATCH // w)
    si, st, ti, tt = (x[rows].clone() for x in batch())
    out = {}
    for case, labels in CASES.items():
        name = case.split("/")[0]
        loss = vlkd_core.build_loss(name, widths=WIDTHS)
        image, text = si.clone().requires_grad_(True), st.clone().requires_grad_(True)
        ids = torch.arange(GLOBAL_BATCH) if labels is None else labels
        inputs = loss_inputs(image, text, teacher_image=ti, teacher_text=tt,
                             teacher_logit_scale=torch.tensor(30.0), labels=ids[rows])
        value = LossCall(loss, name)(loss, inputs)["loss"]
        value.backward()
        out[case] = {"value": value.detach(), "image": image.grad, "text": text.grad,
                     "params": {n: p.grad for n, p in loss.named_parameters() if p.requires_grad}}
    return out
