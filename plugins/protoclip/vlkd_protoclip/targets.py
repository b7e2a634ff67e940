"""The prototype-level term of ProtoCLIP for one direction (student side -> teacher prototypes)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def proto_term(z: torch.Tensor, targets: torch.Tensor, teacher_centroids: torch.Tensor | None,
               assigned: torch.Tensor, scale: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CE(scale · z targetsᵀ, q) averaged over the rows, and the accuracy of the argmax.

    q = softmax(C[a] Cᵀ / temperature) with C the teacher's centroids and a the teacher's
    assignment of each row (the paper's smoothed target: prototypes close to the sample's own
    share the mass), or onehot(a) when temperature is 0 or there are no teacher centroids."""
    scores = scale * z @ targets.T.to(z.dtype)
    if temperature > 0 and teacher_centroids is not None:
        c = teacher_centroids.to(z.dtype)
        q = F.softmax(c[assigned] @ c.T / temperature, dim=1)
        loss = -(q * F.log_softmax(scores, dim=1)).sum(dim=1).mean()
    else:
        loss = F.cross_entropy(scores, assigned)
    accuracy = (scores.detach().argmax(dim=1) == assigned).float().mean()
    return loss, accuracy
