"""A test-only loss plugin reading a teacher model's features through LossInputs (registered
in-process by the tests): TinyCLIP-style affinity mimicking, written plainly, recording what it
received."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core import LossNeeds
from vlkd_core.hookspecs import hookimpl

SEEN: list[dict] = []


class TeacherMimic(nn.Module):
    needs = LossNeeds(teacher=False, symmetric=True)

    def __init__(self, student_dim: int, teacher_model_dim: int):
        super().__init__()
        self.widths = (student_dim, teacher_model_dim)

    def forward(self, image_features, text_features, teacher_image, teacher_text, teacher_logit_scale, batch):
        SEEN.append({"teacher_image": teacher_image, "teacher_text": teacher_text, "scale": teacher_logit_scale,
                     "views": batch.teacher_images, "texts": list(batch.texts)})
        s = F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T
        t = teacher_logit_scale * F.normalize(teacher_image, dim=-1) @ F.normalize(teacher_text, dim=-1).T
        return -(t.softmax(1) * (s * 10).log_softmax(1)).sum(1).mean()


@hookimpl
def vlkd_register_losses(register):
    register("teacher-mimic", TeacherMimic)
